// Runs the test OpenID provider of provider-lib.mjs as a process, for tests in other languages
// (crates/server/tests/oidc_provider.rs).
//
//   node tests/oidc/provider.mjs '{"port": 0, "clientId": "surechat", "clientSecret": "s3cret",
//                                  "redirectUris": ["http://127.0.0.1:9/cb"]}'
//
// The JSON argument (or the OIDC_PROVIDER_CONFIG variable) takes what startProvider() takes:
// port, clientId, clientSecret, redirectUris, idTokenAlg, or clients (a list). With
// "exitWithStdin": true the provider stops when its standard input closes, so it never outlives
// a test process that died without stopping it. Once serving it prints one line on stdout:
//   listening on http://127.0.0.1:PORT
// (the issuer; the provider's own notices may come before it).
import { startProvider } from './provider-lib.mjs';

const config = JSON.parse(process.argv[2] ?? process.env.OIDC_PROVIDER_CONFIG ?? '{}');
const provider = await startProvider(config);
console.log(`listening on ${provider.issuer}`);

async function stop() {
  await provider.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (config.exitWithStdin) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
