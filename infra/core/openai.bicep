// Azure OpenAI account with one chat model deployment. Only deployed when no
// existing endpoint is passed to main.bicep.

param name string
param location string
param tags object = {}

param deploymentName string
param modelName string
param modelVersion string

@description('Deployment type. GlobalStandard has the widest regional availability for small chat models.')
param deploymentSku string = 'GlobalStandard'

@description('Capacity in units of 1,000 tokens per minute.')
param capacity int

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    // Entra ID tokens require a custom subdomain; the generic regional endpoint
    // only accepts keys.
    customSubDomainName: name
    // Keys are switched off, so AZURE_OPENAI_API_KEY has nothing to leak: callers
    // need the Cognitive Services OpenAI User role instead.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource chatDeployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSku
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output name string = account.name
output id string = account.id
output endpoint string = account.properties.endpoint
output deploymentName string = chatDeployment.name
