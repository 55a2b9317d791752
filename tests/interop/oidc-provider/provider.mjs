// A real OpenID Provider for Vigil's sign-in tests: panva's certified `oidc-provider`, on an
// http loopback port, with one confidential client and a few accounts.
//
//   node provider.mjs <redirect_uri> [client_secret]
//
// Prints `issuer=http://127.0.0.1:<port>` on stdout once it listens; stops with its parent's
// stdin (so a test that dies takes the provider with it).
//
// The development interactions render the login and consent pages; the login form's
// submission is answered here instead, so that the password is checked and the account's
// authentication methods (`amr`, RFC 8176) reach the ID token as a real provider would set them.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const [redirectUri, clientSecret = 'vigil-test-client-secret'] = process.argv.slice(2);
if (!redirectUri) {
  console.error('usage: node provider.mjs <redirect_uri> [client_secret]');
  process.exit(2);
}

// Accounts: the login name is the account id. `amr` is what the provider says it checked.
const ACCOUNTS = {
  'alice': {
    password: 'alice-password',
    amr: ['pwd'],
    claims: { preferred_username: 'alice', email: 'alice@hospital.example', email_verified: true },
  },
  'sec-mfa': {
    password: 'sec-mfa-password',
    amr: ['pwd', 'otp'],
    claims: { preferred_username: 'sec.officer', email: 'sec@hospital.example', email_verified: true },
  },
  'sec-nomfa': {
    password: 'sec-nomfa-password',
    amr: ['pwd'],
    claims: { preferred_username: 'sec.officer', email: 'sec@hospital.example', email_verified: true },
  },
  'stranger': {
    password: 'stranger-password',
    amr: ['pwd'],
    claims: { preferred_username: 'stranger', email: 'stranger@elsewhere.example', email_verified: true },
  },
};

// Fresh signing keys each run: an RSA key (RS256, the default ID token algorithm) and a P-256 key.
const jwk = (pair, kid, alg) => ({ ...pair.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
const jwks = {
  keys: [
    jwk(generateKeyPairSync('rsa', { modulusLength: 2048 }), 'rsa-1', 'RS256'),
    jwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ec-1', 'ES256'),
  ],
};

const server = createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'vigil-hub',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    // amr with every ID token: what the provider checked (RFC 8176).
    openid: ['sub', 'amr'],
    profile: ['preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Claims of the requested scopes in the ID token too, as hospital providers (Entra ID,
  // Keycloak) do; the hub reads the user name from the ID token only.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
  },
});

// The login form's submission: check the password, then finish the login with the account's amr.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || !/^\/interaction\/[^/]+$/.test(ctx.path)) return next();
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  if (form.get('prompt') !== 'login') {
    // The consent form goes on to the development interactions, which read the body again.
    ctx.req.body = Object.fromEntries(form);
    return next();
  }
  const account = ACCOUNTS[form.get('login')];
  if (!account || account.password !== form.get('password')) {
    ctx.status = 401;
    ctx.body = 'wrong login or password';
    return undefined;
  }
  ctx.respond = false;
  return provider.interactionFinished(ctx.req, ctx.res, {
    login: { accountId: form.get('login'), amr: account.amr },
  }, { mergeWithLastSubmission: false });
});

server.on('request', provider.callback());
console.log(`issuer=${issuer}`);
// The parent reads only that line and may close the pipe: anything else goes to stderr.
process.stdout.on('error', () => {});
console.log = console.info = console.error;

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
