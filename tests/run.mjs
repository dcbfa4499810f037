// Runs every tests/**/*.test.ts with Node's test runner, TypeScript loaded by tsx.
// Usage: node tests/run.mjs [substring-filter...]
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
    for (const name of readdirSync(dir).sort()) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (name.endsWith(".test.ts")) files.push(relative(root, p));
    }
})(join(root, "tests"));
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
    console.error(`no test files match ${JSON.stringify(filters)}`);
    process.exit(1);
}
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...chosen], {
    cwd: root,
    stdio: "inherit",
});
process.exit(r.status ?? 1);
