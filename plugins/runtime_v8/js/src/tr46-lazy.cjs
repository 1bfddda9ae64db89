// UTS #46 (tr46) compiled only when a host name needs it: its tables cost tens of ms
// to parse, so scripts/build-js.sh embeds the bundled library as a string. An
// all-ASCII domain without punycode labels maps to its lowercase form under the
// options the URL parser uses (non-strict), so it never loads them.
let real = null;
function load() {
  if (real === null) real = new Function(require("../build/tr46-source.cjs"))();
  return real;
}

function asciiFast(domain, options) {
  if (options && (options.useSTD3ASCIIRules || options.checkHyphens || options.verifyDNSLength)) return null;
  for (let i = 0; i < domain.length; i++) if (domain.charCodeAt(i) > 0x7e) return null;
  const lower = domain.toLowerCase();
  if (lower.startsWith("xn--") || lower.includes(".xn--")) return null;
  return lower;
}

module.exports = {
  toASCII(domain, options) {
    const fast = asciiFast(domain, options);
    return fast !== null ? fast : load().toASCII(domain, options);
  },
  toUnicode(domain, options) {
    return load().toUnicode(domain, options);
  },
};
