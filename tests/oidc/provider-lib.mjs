// A real OpenID provider (the certified `oidc-provider` package) for surechat's single sign-on
// tests, and a headless walk through its sign-in pages.
//
// startProvider() serves one provider on 127.0.0.1 with fixed accounts and the provider's own
// login and consent pages (devInteractions). signIn() plays the browser with plain fetch: it
// follows the redirects, fills the login form, submits the consent form and returns where the
// provider finally sends the browser (the client's redirect_uri with `code` and `state`).
// Node's fetch keeps no cookies, so a small jar here carries them by hand, by path.

import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

/**
 * The accounts the provider knows, by login name (which is also their `sub`). Any other login
 * signs in too, as an account with a `sub` and no email or name: the case of a provider that
 * shares no email.
 */
export const ACCOUNTS = Object.freeze({
  agent: { email: 'agent@corp.example', email_verified: true, name: 'Ada Agent' },
  outsider: { email: 'outsider@other.example', email_verified: true, name: 'Oscar Outsider' },
  unverified: { email: 'unverified@corp.example', email_verified: false, name: 'Una Unverified' },
});

/** A fresh signing key as a private JWK with its `kid`, `use` and `alg`. */
function signingKey(kind, alg) {
  const options = kind === 'rsa' ? { modulusLength: 2048 } : { namedCurve: 'P-256' };
  const { privateKey } = generateKeyPairSync(kind, options);
  const kid = `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg };
}

/**
 * A client registration. With a secret it authenticates at the token endpoint with HTTP Basic
 * (client_secret_basic); without, it is a public client (token_endpoint_auth_method none).
 * `idTokenAlg` is RS256 (the provider's default) or ES256.
 */
function clientMetadata({ clientId, clientSecret, redirectUris, idTokenAlg = 'RS256' }) {
  if (!clientId || !Array.isArray(redirectUris) || redirectUris.length === 0) {
    throw new Error('a client needs clientId and redirectUris');
  }
  return {
    client_id: clientId,
    ...(clientSecret ? { client_secret: clientSecret } : {}),
    token_endpoint_auth_method: clientSecret ? 'client_secret_basic' : 'none',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: idTokenAlg,
  };
}

/**
 * Starts a provider on 127.0.0.1:`port` (0: any free port).
 *
 * Either one client (`clientId`, `clientSecret` (optional), `redirectUris`, `idTokenAlg`) or
 * `clients`, a list of such objects. PKCE (S256) is required of every client. The provider signs
 * with a fresh RSA and a fresh P-256 key each start.
 *
 * @returns {Promise<{issuer: string, port: number, provider: Provider, close: () => Promise<void>}>}
 */
export async function startProvider({
  clientId,
  clientSecret,
  redirectUris,
  idTokenAlg,
  clients,
  port = 0,
  accounts = ACCOUNTS,
} = {}) {
  const registrations = (clients ?? [{ clientId, clientSecret, redirectUris, idTokenAlg }])
    .map(clientMetadata);

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: registrations,
    jwks: { keys: [signingKey('rsa', 'RS256'), signingKey('ec', 'ES256')] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // Put the scopes' claims in the ID token even though an access token is issued too (the
    // provider would otherwise keep them for the userinfo endpoint): the server reads only the
    // ID token, as it does with the providers that operators use.
    conformIdTokenClaims: false,
    // Lifetimes in seconds, given so the provider does not print a notice for each default.
    ttl: {
      AccessToken: 3600, AuthorizationCode: 60, Grant: 3600, IdToken: 3600, Interaction: 600,
      Session: 3600,
    },
    async findAccount(ctx, id) {
      const known = Object.hasOwn(accounts, id) ? accounts[id] : {};
      return { accountId: id, claims: async () => ({ sub: id, ...known }) };
    },
  });
  // Served at the issuer's root; nothing sits in front of it, so no proxy headers are trusted.
  server.on('request', provider.callback());

  return {
    issuer,
    port: server.address().port,
    provider,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Cookies as a browser keeps them, reduced to what the walk needs: by name and path, sent to
 * the requests whose path is under the cookie's, dropped when expired. All are for one host.
 */
export class CookieJar {
  #cookies = new Map(); // `${path}\n${name}` -> { name, value, path }

  /** Takes the Set-Cookie headers of a response to `url`. */
  store(url, setCookies) {
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // RFC 6265 §5.1.4: without a Path, the request path up to its last slash.
      let path = url.pathname.slice(0, url.pathname.lastIndexOf('/')) || '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.split('=');
        const v = rest.join('=').trim();
        switch (key.trim().toLowerCase()) {
          case 'path':
            if (v.startsWith('/')) path = v;
            break;
          case 'max-age':
            if (Number(v) <= 0) expired = true;
            break;
          case 'expires':
            if (Date.parse(v) <= Date.now()) expired = true;
            break;
        }
      }
      const key = `${path}\n${name}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }

  /** The Cookie header for a request to `url` ('' when none applies). */
  header(url) {
    const matches = (path) =>
      url.pathname === path ||
      url.pathname.startsWith(path.endsWith('/') ? path : `${path}/`);
    return [...this.#cookies.values()]
      .filter((c) => matches(c.path))
      // RFC 6265 §5.4: longer paths first.
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Undoes the HTML escaping of an attribute value. */
function unescapeHtml(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X'
        ? parseInt(entity.slice(2), 16)
        : parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[entity.toLowerCase()] ?? whole;
  });
}

function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*"([^"]*)"/g)) {
    found[m[1].toLowerCase()] = unescapeHtml(m[2]);
  }
  return found;
}

/**
 * The first POST form of an interaction page: its action and its hidden fields (`prompt` says
 * which page: `login` or `consent`).
 */
export function parseForm(html) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!form) return null;
  const { action, method = 'get' } = attributes(form[1]);
  const fields = {};
  for (const input of form[2].matchAll(/<input\b([^>]*)>/gi)) {
    const { type, name, value = '' } = attributes(input[1]);
    if (type === 'hidden' && name) fields[name] = value;
  }
  return { action, method: method.toLowerCase(), fields };
}

/**
 * Signs `login` in at the provider, headless, starting from an authorization URL: follows each
 * redirect (carrying the provider's cookies), fills the login page's form (`login`, and any
 * password: the pages accept any), submits the consent page's form as it is, and returns the
 * Location that leaves the provider's origin: the client's redirect_uri with `code`, `state`
 * and `iss`, or with `error` when the provider refused.
 *
 * @param {string} authorizeUrl
 * @param {string} login
 * @returns {Promise<string>}
 */
export async function signIn(authorizeUrl, login, { maxSteps = 20 } = {}) {
  const jar = new CookieJar();
  const provider = new URL(authorizeUrl).origin;
  let url = new URL(authorizeUrl);
  let request = { method: 'GET' };
  for (let step = 0; step < maxSteps; step += 1) {
    const headers = { ...request.headers };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const response = await fetch(url, { ...request, headers, redirect: 'manual' });
    jar.store(url, response.headers.getSetCookie());

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== provider) return next.href;
      url = next;
      request = { method: 'GET' };
      continue;
    }

    const html = await response.text();
    const form = response.status === 200 ? parseForm(html) : null;
    if (!form || form.method !== 'post' || !form.action) {
      const text = html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
      throw new Error(`${url}: HTTP ${response.status} and no form to submit: ${text}`);
    }
    const fields = { ...form.fields };
    if (fields.prompt === 'login') {
      fields.login = login;
      fields.password = 'any password';
    }
    url = new URL(form.action, url);
    request = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    };
  }
  throw new Error(`no redirect out of ${provider} after ${maxSteps} steps`);
}
