/** A mistyped flag is a usage error in every command: the message, the command's usage, exit 2, no stack trace. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cliRunner } from "../helpers/cli";
import { isolateCache } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();

const thinlayer = cliRunner(cacheDir);

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
