// What an operator watches sod-sync with: a workbook over the metrics the app exports to Application Insights (README,
// "Metrics"), and three log alert rules. The workbook costs nothing and is on by default; the alert rules are billed
// per rule and evaluation, so they are off until `alertsEnabled` is set. The queries read the `customMetrics` table,
// where the Azure Monitor exporter writes each metric under its name, its attributes in `customDimensions`: a
// counter's export as a delta (`valueSum`: summed over a window, the window's count), a gauge's as one `value`, a
// histogram's with its count, sum, min and max (`valueMax`). test/deploy/monitoring.test.ts checks every name and
// attribute against src/telemetry/metrics.ts.

param location string
param tags object
param token string

@description('The Application Insights component the app exports its metrics to.')
param insightsId string

param workbookEnabled bool
param alertsEnabled bool
param alertEmail string
param deadLetterAlertThreshold int

@description('SOD_MAX_PAIR_AGE_HOURS: the old-pairs alert fires at half of it.')
param maxPairAgeHours string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = if (workbookEnabled) {
  name: guid(resourceGroup().id, 'sod-sync-workbook', token)
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'sod-sync'
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: insightsId
    serializedData: replace(loadTextContent('workbook.json'), '{application-insights-id}', insightsId)
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (alertsEnabled && !empty(alertEmail)) {
  name: 'ag-sod-sync-${token}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'sod-sync'
    enabled: true
    emailReceivers: [
      {name: 'operator', emailAddress: alertEmail, useCommonAlertSchema: true}
    ]
  }
}

// Each query returns a row only when its condition holds; the rule fires when it returns any (Count > 0).
var alerts = [
  {
    name: 'dead-letters'
    displayName: 'sod-sync: pairs dead-lettered'
    description: 'More than ${deadLetterAlertThreshold} pairs dead-lettered in the last hour. Read them with `sod-sync dead-letters list`: each record names its reason (README, "Dead letters").'
    severity: 2
    windowSize: 'PT1H'
    query: 'customMetrics | where name == \'sod_sync.pairs\' and tostring(customDimensions.outcome) == \'dead-letter\' | summarize deadLetters = sum(valueSum) | where deadLetters > ${deadLetterAlertThreshold}'
  }
  {
    name: 'old-pairs'
    displayName: 'sod-sync: pairs waiting past half their age limit'
    description: 'A message settled in the last hour whose pairs had waited more than half of SOD_MAX_PAIR_AGE_HOURS (${maxPairAgeHours} h) since they were first queued: at the limit they are dead-lettered expired. Look at the 429 share and the pace in the workbook.'
    severity: 2
    windowSize: 'PT1H'
    query: 'customMetrics | where name == \'sod_sync.message.age\' | summarize oldestSeconds = max(valueMax) | where oldestSeconds > todouble(\'${maxPairAgeHours}\') * 3600 / 2'
  }
  {
    name: 'no-progress'
    displayName: 'sod-sync: no progress while pairs are pending'
    description: 'For 30 minutes the pairs queue held messages and no pair was settled (re-queues do not count). Look for failed invocations (a 401, an internal error) in the app\'s logs.'
    severity: 1
    windowSize: 'PT30M'
    query: 'let settled = toscalar(customMetrics | where name == \'sod_sync.pairs\' and tostring(customDimensions.outcome) != \'requeued\' | summarize sum(valueSum)); customMetrics | where name == \'sod_sync.queue.messages\' and tostring(customDimensions.queue) == \'pairs\' | summarize pendingMessages = min(value) | where pendingMessages > 0 and coalesce(settled, 0.0) == 0'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2021-08-01' = [for alert in alerts: if (alertsEnabled) {
  name: 'sod-sync-${alert.name}-${token}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: alert.displayName
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT15M'
    windowSize: alert.windowSize
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1}
        }
      ]
    }
    autoMitigate: true
    actions: {actionGroups: alertsEnabled && !empty(alertEmail) ? [actionGroup.id] : []}
  }
}]

output workbookId string = workbookEnabled ? workbook.id : ''
