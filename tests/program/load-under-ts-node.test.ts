/**
 * index.ts must load the way Pulumi loads it: ts-node with type-checking (not transpile-only, not
 * tsx), under mocks, in a fresh process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_DIR, pulumiConfigEnv } from "../helpers/diff";

function tsNode(file: string, env: Record<string, string> = {}) {
    const { TS_NODE_TRANSPILE_ONLY: _t, TS_NODE_TYPE_CHECK: _c, ...rest } = process.env;
    return spawnSync(process.execPath, ["-r", "ts-node/register", file], {
        cwd: PROJECT_DIR,
        encoding: "utf8",
        env: { ...rest, ...env },
        timeout: 300_000,
    });
}

void test("ts-node here type-checks (a type error fails to load)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-tsnode-"));
    try {
        const bad = path.join(dir, "bad.ts");
        fs.writeFileSync(bad, 'const n: number = "not a number";\nconsole.log(n);\n');
        const r = tsNode(bad);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /TS2322/);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

for (const stack of ["uat"]) {
    void test(`index.ts loads under ts-node with type-checking and mocks (stack ${stack})`, () => {
        const r = tsNode(path.join("tests", "program", "load-under-ts-node.ts"), { ...pulumiConfigEnv({ stack }), THINLAYER_STACK: stack });
        assert.equal(r.status, 0, r.stderr);
        const outputs = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
        assert.match(outputs.appImageRef, /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/thinlayer\/app@sha256:[a-f0-9]{64}$/);
        assert.match(outputs.appTag, /^app-[a-f0-9]{12}$/);
        assert.equal(outputs.pinned, false);
    });
}
