// The app's only credential. A user-assigned identity (rather than the site's
// system-assigned one) exists before the function app does, so role assignments,
// the deployment container and Key Vault references can all name it up front,
// and it survives if the app is deleted and recreated.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
