/** A mistyped flag is a usage error in every command: the message, the command's usage, exit 2, no stack trace. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { isolateCache } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();
const REPO = path.resolve(__dirname, "../..");

function thinlayer(...args: string[]) {
    const r = spawnSync(process.execPath, [path.join(REPO, "bin/thinlayer.js"), ...args], {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, THINLAYER_CACHE_DIR: cacheDir },
        timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const CASES: { args: string[]; message: RegExp }[] = [
    ...(
        [
            ["plan", "--json"],
            ["ensure", "--json"],
            ["rollback", "--list"],
        ] as const
    ).flatMap(([cmd, known]) => [
        { args: [cmd, "--bogus"], message: /Unknown option '--bogus'/ },
        { args: [cmd, known, "--bogus"], message: /Unknown option '--bogus'/ },
    ]),
    { args: ["ensure", "base", "--bogus"], message: /Unknown option '--bogus'/ },
    { args: ["ensure", "base", "--context"], message: /Option '--context <value>' argument missing/ },
    { args: ["plan", "--stack"], message: /Option '--stack <value>' argument missing/ },
];

for (const { args, message } of CASES) {
    void test(`thinlayer ${args.join(" ")}: the problem, the usage, exit 2`, () => {
        const r = thinlayer(...args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, new RegExp(`usage:\\s+thinlayer ${args[0]}`));
        assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /, "no stack trace");
        assert.equal(r.stdout, "");
    });
}
