// The console's page and its bundle, built by `npm run build` (scripts/build-console.ts) into dist/console/
// beside this module: nothing is fetched from anywhere else, so it works offline.
import { readFileSync, readdirSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { OperationsAnswer } from "./operations-types.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Only this origin's scripts, styles and API; no framing; no referrer leaves the page. */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const folder = fileURLToPath(new URL("../console/", import.meta.url));

/** `/` and `/assets/<file>`; undefined for any other path. The files are read once. */
export function consoleAssets(): (path: string) => Promise<OperationsAnswer> | undefined {
  let files: Map<string, string> | undefined;
  const load = (): Map<string, string> => {
    if (files) return files;
    files = new Map();
    try {
      for (const name of readdirSync(folder)) if (TYPES[extname(name)]) files.set(name, readFileSync(`${folder}${name}`, "utf8"));
    } catch {
      // Not built: the page says how to build it.
    }
    return files;
  };
  return (path) => {
    const name = path === "/" || path === "/index.html" ? "index.html" : path.startsWith("/assets/") ? path.slice("/assets/".length) : undefined;
    if (name === undefined) return undefined;
    const body = load().get(name);
    if (body === undefined) {
      const missing = name === "index.html" ? "the console is not built: run npm run build" : `no console asset ${name}`;
      return Promise.resolve({ status: 404, headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS }, body: missing });
    }
    // The bundle's names do not change between builds, so the browser revalidates rather than caches.
    return Promise.resolve({ status: 200, headers: { "content-type": TYPES[extname(name)]!, "cache-control": "no-cache", ...SECURITY_HEADERS }, body });
  };
}
