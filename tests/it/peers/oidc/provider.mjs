// A real OpenID Connect provider (npm oidc-provider, OpenID Certified) for
// gatehouse's SSO tests. Prints its issuer URL on the first line of stdout.
// Environment: CLIENT_ID, CLIENT_SECRET, REDIRECT_URI (comma-separated),
// ACCOUNTS (JSON: sub -> claims). PUT /_accounts/<sub> with a JSON body
// replaces an account's claims while it runs. An account whose claims hold
// `"_tamper"` gets a doctored ID token, so each check of the relying party is
// tested on its own: "audience", "expired", "issuer" and "nonce" re-sign a
// changed token with the provider's own key; "hs256" signs it with the client
// secret (HMAC) instead; "none" sends it unsigned.
import Provider from 'oidc-provider';
import http from 'node:http';
import { generateKeyPair, exportJWK, SignJWT, UnsecuredJWT, decodeJwt } from 'jose';

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
const accounts = new Map(Object.entries(JSON.parse(process.env.ACCOUNTS || '{}')));

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: process.env.REDIRECT_URI.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    jwks: { keys: [jwk] },
    // HS256 advertised too (as Keycloak does), so the relying party's own
    // refusal of HMAC-signed ID tokens is what is tested.
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'HS256'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['given_name', 'family_name', 'name', 'preferred_username'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    async findAccount(ctx, sub) {
      if (!accounts.has(sub)) return undefined;
      return { accountId: sub, async claims() { return { sub, ...accounts.get(sub) }; } };
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token' || !ctx.body || !ctx.body.id_token) return;
    const claims = decodeJwt(ctx.body.id_token);
    const tamper = (accounts.get(claims.sub) || {})._tamper;
    if (!tamper) return;
    if (tamper === 'audience') claims.aud = 'someone-else';
    if (tamper === 'issuer') claims.iss = 'https://impostor.example.org';
    if (tamper === 'nonce') claims.nonce = 'not-the-one-sent';
    if (tamper === 'expired') {
      claims.exp = Math.floor(Date.now() / 1000) - 3600;
      claims.iat = claims.exp - 600;
    }
    if (tamper === 'none') {
      ctx.body.id_token = new UnsecuredJWT(claims).encode();
    } else if (tamper === 'hs256') {
      ctx.body.id_token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(process.env.CLIENT_SECRET));
    } else {
      ctx.body.id_token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .sign(privateKey);
    }
  });
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'PUT' && req.url.startsWith('/_accounts/')) {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        accounts.set(decodeURIComponent(req.url.slice('/_accounts/'.length)), JSON.parse(body));
        res.end('ok');
      });
      return;
    }
    handle(req, res);
  });
  console.log(issuer);
});
