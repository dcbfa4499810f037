/**
 * bin/thinlayer.js picks the compiled CLI (build/) only while it is at least as new as every
 * source it was built from, else tsx: run on a throwaway tree whose "compiled" and "TypeScript"
 * entry points say which one ran. And the real compiled CLI, when built, finds its run-time
 * assets (Pulumi.yaml, lib/migrations/classify.py) from build/.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { tempDir } from "../lib/inputs.fixtures";

const REPO = path.resolve(__dirname, "../..");

function tree(): { root: string; run(): string; program(): string; stamp(at: Date): void; touch(rel: string, at: Date): void } {
    const root = tempDir("thinlayer-shim-");
    const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
        fs.writeFileSync(path.join(root, rel), text);
    };
    fs.mkdirSync(path.join(root, "bin"));
    for (const f of ["thinlayer.js", "program.js", "fresh.js", "codecache.js"]) fs.copyFileSync(path.join(REPO, "bin", f), path.join(root, "bin", f));
    write("bin/thinlayer.ts", 'process.stdout.write("typescript");\n');
    write("lib/deep/mod.ts", "export const x = 1;\n");
    write("cli/cmd.ts", "export const y = 1;\n");
    write("components/c.ts", "export const z = 1;\n");
    write("index.ts", 'export = "typescript";\n');
    write("tsconfig.json", JSON.stringify({ compilerOptions: { module: "commonjs", strict: true } }));
    write("tsconfig.pulumi.json", JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { noCheck: true } }));
    write("build/bin/thinlayer.js", 'process.stdout.write("compiled");\n');
    write("build/index.js", 'module.exports = "compiled";\n');
    const past = new Date(Date.now() - 60_000);
    for (const rel of [
        "bin/thinlayer.ts",
        "lib/deep/mod.ts",
        "cli/cmd.ts",
        "components/c.ts",
        "index.ts",
        "tsconfig.json",
        "tsconfig.pulumi.json",
        "build/bin/thinlayer.js",
        "build/index.js",
    ]) {
        fs.utimesSync(path.join(root, rel), past, past);
    }
    return {
        root,
        // NODE_PATH: the shim's tsx fallback resolves tsx from this repo's node_modules.
        run: () => {
            const r = spawnSync(process.execPath, [path.join(root, "bin/thinlayer.js")], {
                encoding: "utf8",
                env: { ...process.env, NODE_PATH: path.join(REPO, "node_modules") },
            });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
        },
        // What bin/program.js (Pulumi.yaml main) exports, as the Pulumi runtime would require it.
        program: () => {
            const r = spawnSync(process.execPath, ["-e", `process.stdout.write(String(require(${JSON.stringify(path.join(root, "bin/program.js"))})))`], {
                encoding: "utf8",
                env: { ...process.env, NODE_PATH: path.join(REPO, "node_modules") },
            });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
        },
        stamp: (at) => {
            write("build/.stamp", "");
            fs.utimesSync(path.join(root, "build/.stamp"), at, at);
        },
        touch: (rel, at) => fs.utimesSync(path.join(root, rel), at, at),
    };
}

test("no build/.stamp (never built, or a failed build): the TypeScript through tsx", () => {
    assert.equal(tree().run(), "typescript");
});

test("a build newer than every source: the compiled CLI", () => {
    const t = tree();
    t.stamp(new Date());
    assert.equal(t.run(), "compiled");
});

test("a source edited after the build (deep under lib/, a command in cli/, or the entry point): tsx, never stale code", () => {
    const t = tree();
    const built = new Date(Date.now() - 30_000);
    t.stamp(built);
    assert.equal(t.run(), "compiled");
    t.touch("lib/deep/mod.ts", new Date());
    assert.equal(t.run(), "typescript");
    t.touch("lib/deep/mod.ts", new Date(built.getTime() - 1000));
    t.touch("cli/cmd.ts", new Date());
    assert.equal(t.run(), "typescript");
    t.touch("cli/cmd.ts", new Date(built.getTime() - 1000));
    t.touch("bin/thinlayer.ts", new Date());
    assert.equal(t.run(), "typescript");
});

test("the program entry (bin/program.js): the compiled program while the build is fresh, else index.ts through ts-node", () => {
    const t = tree();
    assert.equal(t.program(), "typescript", "never built");
    const built = new Date(Date.now() - 30_000);
    t.stamp(built);
    assert.equal(t.program(), "compiled");
    for (const rel of ["index.ts", "components/c.ts", "lib/deep/mod.ts"]) {
        t.touch(rel, new Date());
        assert.equal(t.program(), "typescript", `${rel} edited after the build`);
        t.touch(rel, new Date(built.getTime() - 1000));
    }
    assert.equal(t.program(), "compiled");
});

test("THINLAYER_NO_BUILD=1 forces tsx", () => {
    const t = tree();
    t.stamp(new Date());
    const r = spawnSync(process.execPath, [path.join(t.root, "bin/thinlayer.js")], {
        encoding: "utf8",
        env: { ...process.env, NODE_PATH: path.join(REPO, "node_modules"), THINLAYER_NO_BUILD: "1" },
    });
    assert.equal(r.stdout, "typescript", r.stderr);
});

/** A skip reason when `file` of the build is missing outside CI (under CI=true a missing build fails the test instead). */
function unbuilt(file: string): string | false {
    return !fs.existsSync(path.join(REPO, file)) && process.env.CI !== "true" && "not built (npm run build; under CI=true a missing build fails)";
}

test(
    "the compiled modules find the project root and the classifier script from build/",
    {
        skip: unbuilt("build/lib/root.js"),
    },
    () => {
        const r = spawnSync(
            process.execPath,
            [
                "-e",
                'const r = require("./build/lib/root.js"); const c = require("./build/lib/migrations/classify.js"); process.stdout.write(JSON.stringify([r.PROJECT_ROOT, c.CLASSIFIER]))',
            ],
            { cwd: REPO, encoding: "utf8" },
        );
        assert.equal(r.status, 0, r.stderr);
        const [root, classifier] = JSON.parse(r.stdout) as [string, string];
        assert.equal(root, REPO);
        assert.ok(fs.existsSync(path.join(root, "Pulumi.yaml")));
        assert.ok(fs.existsSync(classifier), classifier);
    },
);

test("bin/fresh.js watches everything tsconfig.build.json compiles (a source it missed could run stale)", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fresh = require("../../bin/fresh.js") as { SOURCE_DIRS: readonly string[]; SOURCE_FILES: readonly string[] };
    const include = (JSON.parse(fs.readFileSync(path.join(REPO, "tsconfig.build.json"), "utf8")) as { include: string[] }).include;
    const missed = include.filter((p) =>
        p.endsWith("/**/*.ts") ? !fresh.SOURCE_DIRS.includes(p.slice(0, -"/**/*.ts".length)) : !fresh.SOURCE_FILES.includes(p),
    );
    assert.deepEqual(missed, []);
    assert.ok(fresh.SOURCE_FILES.includes("tsconfig.build.json") && fresh.SOURCE_FILES.includes("tsconfig.json"), "the compiler options too");
});

test(
    "the bundled CLI (build/bin/thinlayer.js, one file) runs, and code bundled into build/bin/ fingerprints the build/lib/ modules the snapshots are keyed on",
    {
        skip: unbuilt("build/lib/hashing/snapshot.js"),
    },
    () => {
        const entry = fs.readFileSync(path.join(REPO, "build/bin/thinlayer.js"), "utf8");
        assert.match(
            entry,
            /\/\/ lib\/hashing\/snapshot\.js|\/\/ build\/lib\/hashing\/snapshot\.js/,
            "the entry holds the lib modules (esbuild's file markers)",
        );
        const help = spawnSync(process.execPath, [path.join(REPO, "bin/thinlayer.js"), "ensure", "--help"], { encoding: "utf8" });
        assert.equal(help.status, 0, help.stderr);
        assert.match(help.stdout, /thinlayer ensure app/);
        // A bundle of the snapshot module placed where the CLI bundle is: the paths it fingerprints exist.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const esbuild = require("esbuild") as typeof import("esbuild");
        const out = path.join(REPO, "build", "bin", `.fingerprint-test-${process.pid}.js`);
        try {
            esbuild.buildSync({
                entryPoints: [path.join(REPO, "build/lib/hashing/snapshot.js")],
                outfile: out,
                bundle: true,
                platform: "node",
                format: "cjs",
                external: ["thinlayer-statcheck"],
                logLevel: "error",
            });
            const r = spawnSync(process.execPath, ["-e", `process.stdout.write(JSON.stringify(require(${JSON.stringify(out)}).fingerprintInputs()))`], {
                encoding: "utf8",
            });
            assert.equal(r.status, 0, r.stderr);
            const files = JSON.parse(r.stdout) as string[];
            assert.ok(files.includes(path.join(REPO, "build/lib/hashing/inputs.js")), files.join("\n"));
            for (const f of files) assert.ok(fs.existsSync(f), `fingerprinted file missing: ${f}`);
        } finally {
            fs.rmSync(out, { force: true });
        }
    },
);
