/**
 * Preloaded by `bun test` (bunfig.toml) before any test file: the whole test
 * process runs in UTC, so no test file sets the time zone for the ones after
 * it. A test that needs another zone sets it and restores it itself.
 */
process.env.TZ = "UTC";
