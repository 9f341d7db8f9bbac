// The resources of one sod-sync deployment, in its resource group (see main.bicep for the parameters' meaning).

param location string
param tags object
param token string
param maximumInstanceCount int
param instanceMemoryMB int
param graphBaseUrl string
param graphApiVersion string
param graphMaxConcurrency int
param maxAttempts int
param maxPairAgeHours string
param reconcileSchedule string
param reconcileEnabled bool
param reconcileApply string
param ledgerRetentionDays int
param workbookEnabled bool
param alertsEnabled bool
param alertEmail string
param deadLetterAlertThreshold int

@description('The operator running azd (AZURE_PRINCIPAL_ID): may use `sod-sync enqueue`, `dead-letters` and the manifest with their own sign-in. Empty: no access for anyone but the app.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('What kind of principal the operator is (AZURE_PRINCIPAL_TYPE): a person, or a service principal when azd runs in CI.')
param principalType string = 'User'

// The queue and container names are src/config/settings.ts's defaults (a test keeps them in step).
var pairsQueue = 'sod-pairs'
var deadLetterQueue = 'sod-pairs-dead-letter'
var packageContainer = 'app-package'
var manifestContainer = 'sod-sync'
var deadLetterContainer = 'sod-sync-dead-letters'
var containers = [manifestContainer, 'sod-sync-state', deadLetterContainer, packageContainer]
// The operator reads and redrives dead letters (their raw messages) and uploads the manifest; nothing else. azd
// publishes the package through the app's deployment endpoint, not by blob upload, so the package container is not here.
var operatorContainers = [manifestContainer, deadLetterContainer]

// Built-in role definitions (ids are Azure's, the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-sod-sync-${token}'
  location: location
  tags: tags
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stsod${take(token, 18)}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {name: 'Standard_LRS'}
  properties: {
    allowSharedKeyAccess: false // Identity only: no key to leak, none in any setting.
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The import ledger (src/ledger/ledger-store.ts names it): what `sod-sync status`, `changes` and `undo` read.
resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: 'sodsyncledger'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in [pairsQueue, deadLetterQueue, '${pairsQueue}-poison']: {
    parent: queueService
    name: queue
  }
]

// The app's identity: queue data for the trigger and every queue it writes; blob data owner for the host (timers,
// leases), the package, the manifest, the shared throttle state and dead-lettered raw messages.
resource appQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Table data for the import ledger (and the host's own diagnostics tables, which is why the account and not the table).
resource appTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The operator: table data on the ledger table only (status and changes read it, enqueue and undo record imports).
resource operatorTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(ledgerTable.id, principalId, roles.storageTableDataContributor)
  scope: ledgerTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

// The operator: queue data on the account (enqueue creates the pairs queue if it is missing; dead-letters reads and
// redrives), blob data on the two containers it uses only.
resource operatorQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource operatorBlobRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (container, i) in containers: if (!empty(principalId) && contains(operatorContainers, container)) {
    name: guid(blobContainers[i].id, principalId, roles.storageBlobDataContributor)
    scope: blobContainers[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
      principalId: principalId
      principalType: principalType
    }
  }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-sod-sync-${token}'
  location: location
  tags: tags
  properties: {
    sku: {name: 'PerGB2018'}
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-sod-sync-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true // Telemetry only with Entra ID: the identity below, no instrumentation key.
  }
}

// The workbook and alert rules over the app's metrics (monitoring.bicep).
module monitoring 'monitoring.bicep' = {
  name: 'sod-sync-monitoring'
  params: {
    location: location
    tags: tags
    token: token
    insightsId: insights.id
    workbookEnabled: workbookEnabled
    alertsEnabled: alertsEnabled
    alertEmail: alertEmail
    deadLetterAlertThreshold: deadLetterAlertThreshold
    maxPairAgeHours: maxPairAgeHours
  }
}

resource insightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-sod-sync-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-sod-sync-${token}'
  location: location
  tags: union(tags, {'azd-service-name': 'sod-sync'})
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {'${identity.id}': {}}
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${packageContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22' // Node 20 is past its end of life; the code runs on 20 and 22 alike (package.json engines >=20).
      }
    }
    siteConfig: {
      appSettings: [
        // The host's and the app's storage, by identity (src/config/settings.ts reads the __queueServiceUri form). The
        // table endpoint holds the import ledger; the identity has Storage Table Data Contributor (appTableRole).
        {name: 'AzureWebJobsStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob}
        {name: 'AzureWebJobsStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue}
        {name: 'AzureWebJobsStorage__tableServiceUri', value: storage.properties.primaryEndpoints.table}
        {name: 'AzureWebJobsStorage__credential', value: 'managedidentity'}
        {name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId}
        // Graph: ManagedIdentityCredential with this client id (no GRAPH_ACCESS_TOKEN, ever, in Azure).
        {name: 'AZURE_CLIENT_ID', value: identity.properties.clientId}
        {name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString}
        {name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD'}
        {name: 'SOD_QUEUE', value: pairsQueue}
        {name: 'SOD_DEAD_LETTER_QUEUE', value: deadLetterQueue}
        {name: 'GRAPH_BASE_URL', value: graphBaseUrl}
        {name: 'GRAPH_API_VERSION', value: graphApiVersion}
        {name: 'GRAPH_MAX_CONCURRENCY', value: string(graphMaxConcurrency)}
        {name: 'GRAPH_BATCH_SIZE', value: '20'}
        {name: 'GRAPH_REQUEST_TIMEOUT_SECONDS', value: '30'}
        {name: 'SOD_INVOCATION_BUDGET_SECONDS', value: '420'}
        {name: 'SOD_MAX_ATTEMPTS', value: string(maxAttempts)}
        {name: 'SOD_MAX_PAIR_AGE_HOURS', value: maxPairAgeHours}
        {name: 'SOD_RETRY_BASE_MS', value: '200'}
        {name: 'SOD_NOT_FOUND_RETRIES', value: '3'}
        {name: 'SOD_THROTTLE_STATE_CONTAINER', value: 'sod-sync-state'}
        {name: 'SOD_DEAD_LETTER_CONTAINER', value: 'sod-sync-dead-letters'}
        {name: 'SOD_LEDGER_RETENTION_DAYS', value: string(ledgerRetentionDays)}
        {name: 'SOD_RECONCILE_SCHEDULE', value: reconcileSchedule}
        {name: 'SOD_MANIFEST_CONTAINER', value: 'sod-sync'}
        {name: 'SOD_MANIFEST_BLOB', value: 'manifest.csv'}
        {name: 'SOD_RECONCILE_SCOPE', value: 'named'}
        {name: 'SOD_RECONCILE_APPLY', value: reconcileApply}
        {name: 'SOD_RECONCILE_PRUNE', value: 'false'}
        {name: 'AzureWebJobs.reconcileSchedule.Disabled', value: reconcileEnabled ? 'false' : 'true'}
      ]
    }
  }
  dependsOn: [appQueueRole, appBlobRole, insightsRole, blobContainers, queues]
}

output functionAppName string = functionApp.name
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output storageAccountName string = storage.name
output queueServiceUri string = storage.properties.primaryEndpoints.queue
output tableServiceUri string = storage.properties.primaryEndpoints.table
