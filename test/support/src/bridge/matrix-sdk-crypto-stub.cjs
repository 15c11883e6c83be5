'use strict';
// Stands in for @matrix-org/matrix-sdk-crypto-nodejs, the native end-to-end encryption binding that
// upstream matrix-appservice-bridge pulls in through its bot SDK. Its install script downloads a prebuilt
// binary, which the test machines cannot do, and these suites bridge unencrypted rooms only. Loading
// succeeds; touching any export (constructing, calling) throws, so a test that reaches encryption fails
// loudly instead of silently running without it.
function unavailable(name) {
  return new Error(`@matrix-org/matrix-sdk-crypto-nodejs is stubbed in the test setup (used: ${name}); end-to-end encryption is not bridged here`);
}

function throwingExport(name) {
  return new Proxy(function stub() {}, {
    apply() {
      throw unavailable(name);
    },
    construct() {
      throw unavailable(name);
    },
    get(_target, property) {
      if (typeof property === 'symbol') return undefined;
      throw unavailable(`${name}.${property}`);
    },
  });
}

module.exports = new Proxy(
  {},
  {
    get(_target, property) {
      if (typeof property === 'symbol' || property === '__esModule' || property === 'then' || property === 'default') return undefined;
      return throwingExport(property);
    },
    ownKeys() {
      return [];
    },
    has() {
      return false;
    },
  },
);
