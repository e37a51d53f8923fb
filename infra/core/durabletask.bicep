// Durable Task Scheduler: the managed Durable Functions backend, deployed only
// when the azd environment selects it (DURABLE_BACKEND=dts, see main.bicep).
// The app reaches it with its user-assigned identity; the role assignment on the
// task hub is in roles.bicep with every other permission.

param name string
param location string
param tags object = {}

@description('Task hub the app uses. host.json reads the same name as %TASKHUB_NAME%, so the two must match.')
param taskHubName string

@allowed([
  'Consumption'
  'Dedicated'
])
@description('Consumption bills per dispatched action; Dedicated bills a fixed monthly price per capacity unit. See docs/DEPLOYMENT.md.')
param skuName string = 'Consumption'

@minValue(1)
@maxValue(3)
@description('Capacity units of a Dedicated scheduler. Ignored for Consumption, which takes no capacity.')
param capacity int = 1

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // Required, and an empty list rejects every caller. Like the storage account,
    // the scheduler stays publicly reachable but answers only to an Entra token
    // whose principal holds a Durable Task role (roles.bicep).
    ipAllowlist: [
      '0.0.0.0/0'
    ]
    sku: skuName == 'Dedicated' ? {
      name: skuName
      capacity: capacity
    } : {
      name: skuName
    }
  }

  resource taskHub 'taskHubs' = {
    name: taskHubName
  }
}

output name string = scheduler.name
output id string = scheduler.id
// The scheduler's URL: the Endpoint part of the app's connection string.
output endpoint string = scheduler.properties.endpoint
output taskHubName string = scheduler::taskHub.name
output taskHubId string = scheduler::taskHub.id
