// The benchmark's peer: oidc-provider's client-credentials token endpoint, one client, RS256 JWT
// access tokens through the resource-indicators feature, the default in-memory adapter.
// Env: PORT (required), CLIENT_ID, CLIENT_SECRET. Listens on 127.0.0.1 only.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
if (!port) throw new Error('PORT is required');
const clientId = process.env.CLIENT_ID || 'bench-client';
const clientSecret = process.env.CLIENT_SECRET || 'bench-secret-bench-secret-bench-secret-0123';
const resource = 'urn:tickets-bench:api';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'global',
    },
  ],
  jwks: { keys: [signingKey] },
  ttl: { ClientCredentials: 3600 },
  scopes: ['global'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'global',
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.proxy = false;

http.createServer(provider.callback()).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider peer on http://127.0.0.1:${port}/token`);
});
