// sod-sync on Azure: a Flex Consumption Function App (Linux, Node.js 22) running as a user-assigned managed identity,
// with identity-based storage (shared keys off), its queues and blob containers, and Application Insights with local
// auth off. `azd up` provisions this and deploys the package `npm run package` builds. The Graph permission is granted
// afterwards with `sod-sync grant` (a directory role is needed for that, not an Azure role).
//
// Shapes and API versions follow Microsoft's Flex Consumption samples (Azure-Samples/azure-functions-flex-consumption-
// samples, functions-quickstart-typescript-azd). Not deployed from the project's CI (no Azure account there): see the
// README, "Deploy to Azure", for what was checked and how.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region for every resource; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({azd: {type: 'location'}})
param location string

@minValue(1)
@maxValue(1000)
@description('At most this many instances per function scale group, not for the whole app: the queue trigger scales up to this many, and the timer runs on instances of its own. Graph throttles per app and tenant: more instances split its budget, they do not raise it. Two serve a bulk import at Graph\'s pace; raise it only with a measured reason.')
param maximumInstanceCount int = 2

@allowed([512, 2048, 4096])
@description('Memory per instance, MB.')
param instanceMemoryMB int = 2048

@description('GRAPH_BASE_URL: Graph\'s origin (a national cloud sets its own).')
param graphBaseUrl string = 'https://graph.microsoft.com'

@allowed(['v1.0', 'beta'])
param graphApiVersion string = 'v1.0'

@minValue(1)
@maxValue(256)
@description('GRAPH_MAX_CONCURRENCY: Graph requests in flight per instance.')
param graphMaxConcurrency int = 8

@minValue(1)
@maxValue(100)
@description('SOD_MAX_ATTEMPTS: failed attempts per pair before retries-exhausted (waiting never counts).')
param maxAttempts int = 5

@description('SOD_MAX_PAIR_AGE_HOURS: a pair not applied this long after it was first queued is dead-lettered expired.')
param maxPairAgeHours string = '72'

@description('SOD_RECONCILE_SCHEDULE: NCRONTAB of the scheduled reconcile (six fields).')
param reconcileSchedule string = '0 0 * * * *'

@description('Whether the scheduled reconcile runs at all (AzureWebJobs.reconcileSchedule.Disabled is its opposite). Enable it only after `sod-sync grant`.')
param reconcileEnabled bool = false

@allowed(['true', 'false'])
@description('SOD_RECONCILE_APPLY: the schedule enqueues the fixes it finds (false: it reports drift only).')
param reconcileApply string = 'false'

@description('Days the import ledger (sod-sync status, changes, undo) keeps an import; 0 turns the ledger off.')
@minValue(0)
@maxValue(3650)
param ledgerRetentionDays int = 90

@description('An Azure Monitor workbook over the app\'s metrics (throughput, outcomes, dead letters by reason, pace, 429 share, pending, imports). Free.')
param workbookEnabled bool = true

@description('Three log alert rules: pairs dead-lettered, pairs waiting past half of SOD_MAX_PAIR_AGE_HOURS, no progress for 30 minutes while pairs are pending. Billed per rule: off by default.')
param alertsEnabled bool = false

@description('Where the alerts are e-mailed (an action group is created for it); empty: the alerts show in the portal only.')
param alertEmail string = ''

@minValue(0)
@description('The dead-letter alert fires when more pairs than this are dead-lettered in an hour.')
param deadLetterAlertThreshold int = 0

@description('The operator running azd (azd fills AZURE_PRINCIPAL_ID): gets queue data on the account, blob data on the dead-letter and manifest containers and table data on the ledger table, to use sod-sync enqueue, dead-letters, status, changes and undo with their own sign-in.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('The operator\'s kind (azd fills AZURE_PRINCIPAL_TYPE): User when a person runs azd, ServicePrincipal in CI.')
param principalType string = 'User'

var tags = {'azd-env-name': environmentName}
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'sod-sync'
  scope: group
  params: {
    location: location
    tags: tags
    token: token
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    graphBaseUrl: graphBaseUrl
    graphApiVersion: graphApiVersion
    graphMaxConcurrency: graphMaxConcurrency
    maxAttempts: maxAttempts
    maxPairAgeHours: maxPairAgeHours
    reconcileSchedule: reconcileSchedule
    reconcileEnabled: reconcileEnabled
    reconcileApply: reconcileApply
    ledgerRetentionDays: ledgerRetentionDays
    workbookEnabled: workbookEnabled
    alertsEnabled: alertsEnabled
    alertEmail: alertEmail
    deadLetterAlertThreshold: deadLetterAlertThreshold
    principalId: principalId
    principalType: principalType
  }
}

// azd stores these in the environment (azd env get-values): `sod-sync grant` takes the principal id, `sod-sync
// enqueue` the queue endpoint.
output AZURE_RESOURCE_GROUP string = group.name
output SOD_FUNCTION_APP string = app.outputs.functionAppName
output SOD_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output SOD_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output SOD_STORAGE_ACCOUNT string = app.outputs.storageAccountName
output SOD_QUEUE_SERVICE_URI string = app.outputs.queueServiceUri
output SOD_TABLE_SERVICE_URI string = app.outputs.tableServiceUri
