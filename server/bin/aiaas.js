#!/usr/bin/env node
// The `aiaas` command. A committed launcher, so npm links the command at install time even before the
// TypeScript sources are built into dist/.
try {
  await import("../dist/bin/aiaas.js");
} catch (error) {
  if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("dist/bin/aiaas.js")) {
    console.error("aiaas is not built yet: run `npm run build` in the repository (npm start and npm test build too).");
    process.exit(2);
  }
  throw error;
}
