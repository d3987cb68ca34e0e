// codepipeline-local dashboard: AWS Signature Version 4, for a server started with --verify-signatures. The
// dashboard then signs every request as the principal whose keys the user gave it (kept in this tab's
// sessionStorage only), with the browser's own cryptography (available on pages served from localhost or over HTTPS).
"use strict";

const SIGV4 = (() => {
  const STORE = "codepipeline-local-credentials";
  const encoder = new TextEncoder();

  const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (text) => hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  async function hmac(key, text) {
    const raw = typeof key === "string" ? encoder.encode(key) : key;
    const imported = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return crypto.subtle.sign("HMAC", imported, encoder.encode(text));
  }
  // RFC 3986: what encodeURIComponent leaves alone, less !'()*.
  const encode = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const stamp = (date) => date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");

  /// The credentials the user gave, if any: {accessKeyId, secretAccessKey, sessionToken, region}.
  function credentials() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE) || "null");
    } catch {
      return null;
    }
  }

  function remember(value) {
    if (value) sessionStorage.setItem(STORE, JSON.stringify(value));
    else sessionStorage.removeItem(STORE);
  }

  /// The signature of a request to this server: `query` params (a Map of name to value, the signature's own
  /// included when presigning), `headers` (lower-case names, values) signed besides the host.
  async function signature(method, path, query, headers, payloadHash, time, creds) {
    const day = time.slice(0, 8);
    const scope = `${day}/${creds.region}/codepipeline/aws4_request`;
    // Non-S3 services sign each path segment encoded once more.
    const canonicalPath = path.split("/").map(encode).join("/");
    const canonicalQuery = [...query].map(([k, v]) => [encode(k), encode(v)])
      .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`).join("&");
    const names = Object.keys(headers).sort();
    const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join("");
    const request = [method, canonicalPath, canonicalQuery, canonicalHeaders, names.join(";"), payloadHash].join("\n");
    const toSign = ["AWS4-HMAC-SHA256", time, scope, await sha256(request)].join("\n");
    let key = await hmac(`AWS4${creds.secretAccessKey}`, day);
    for (const part of [creds.region, "codepipeline", "aws4_request"]) key = await hmac(key, part);
    return { signature: hex(await hmac(key, toSign)), scope, signedHeaders: names.join(";") };
  }

  /// Headers that sign `method path?search` with `body` for `region` (else the signed-in one), to add to a fetch.
  async function sign(method, url, body, region) {
    const stored = credentials();
    if (!stored) return {};
    const creds = { ...stored, region: region || stored.region };
    const target = new URL(url, location.href);
    const time = stamp(new Date());
    const headers = { host: target.host, "x-amz-date": time };
    if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
    const query = new Map([...target.searchParams]);
    const signed = await signature(method, target.pathname, query, headers, await sha256(body || ""), time, creds);
    const out = {
      "X-Amz-Date": time,
      Authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${signed.scope}, `
        + `SignedHeaders=${signed.signedHeaders}, Signature=${signed.signature}`,
    };
    if (creds.sessionToken) out["X-Amz-Security-Token"] = creds.sessionToken;
    return out;
  }

  /// `url` signed in its query string for `region` (for links and event streams, which cannot carry headers),
  /// valid a day.
  async function presign(url, region) {
    const stored = credentials();
    if (!stored) return url;
    const creds = { ...stored, region: region || stored.region };
    const target = new URL(url, location.href);
    const time = stamp(new Date());
    const params = [
      ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
      ["X-Amz-Credential", `${creds.accessKeyId}/${time.slice(0, 8)}/${creds.region}/codepipeline/aws4_request`],
      ["X-Amz-Date", time],
      ["X-Amz-Expires", "86400"],
      ["X-Amz-SignedHeaders", "host"],
    ];
    if (creds.sessionToken) params.push(["X-Amz-Security-Token", creds.sessionToken]);
    for (const [k, v] of params) target.searchParams.set(k, v);
    const query = new Map([...target.searchParams]);
    const signed = await signature("GET", target.pathname, query, { host: target.host }, "UNSIGNED-PAYLOAD", time, creds);
    target.searchParams.set("X-Amz-Signature", signed.signature);
    return `${target.pathname}${target.search}`;
  }

  return { credentials, remember, sign, presign, available: Boolean(window.crypto && crypto.subtle) };
})();
