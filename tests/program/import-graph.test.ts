/**
 * The import graph of the program and the CLI: no cycle, and no upward import. Every module sits
 * in a layer (LAYERS, lowest first) and may import only from its own layer or a lower one, types
 * included (`import type` is an import here too). lib/ is the functional core: it imports no
 * Pulumi SDK and nothing from cli/, components/ or the program. docs/development.md shows the
 * same layers.
 *
 * The graph comes from TypeScript's own import scanner (ts.preProcessFile: static imports,
 * re-exports, `import()` and `require`), resolved to files on disk.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";

const ROOT = path.resolve(__dirname, "../..");

/** Lowest first. A module's layer is that of the longest entry its path starts with. */
const LAYERS: readonly (readonly string[])[] = [
    // Leaves: shared types, errors, the rules every entry point applies, digests.
    ["lib/model.ts", "lib/errors.ts", "lib/rules.ts", "lib/format.ts", "lib/root.ts", "lib/hashing/digest.ts", "lib/migrations/model.ts"],
    // Reading a build: the Dockerfile, the context (ignore files, COPY resolution), stat signatures.
    ["lib/dockerfile/", "lib/context/", "lib/hashing/statcheck.ts"],
    // Content hashing, and the OCI registry (references, media types, credentials, transport).
    ["lib/hashing/", "lib/oci/"],
    // The layer writer; the stack config.
    ["lib/layer/", "lib/config.ts"],
    // The plan (config -> hashes and tags) and the migration analysis.
    ["lib/plan.ts", "lib/migrations/"],
    // Provenance of an image; release operations.
    ["lib/provenance/", "lib/release/"],
    // Building: ensure, builders, the daemonless build.
    ["lib/build/"],
    // The deploy receipt (composes plan, migrations and the layer writer).
    ["lib/receipt/"],
    // Shells over lib/: the CLI commands, the Pulumi components, the policy pack.
    ["cli/", "components/", "policy/"],
    // Entry points.
    ["index.ts", "config.ts", "bin/"],
];

const SOURCE_DIRS = ["lib", "cli", "components", "policy", "bin"];
const SOURCE_FILES = ["index.ts", "config.ts"];

function layerOf(rel: string): number {
    let best = -1;
    let bestLen = -1;
    LAYERS.forEach((entries, i) => {
        for (const e of entries) {
            if ((e.endsWith("/") ? rel.startsWith(e) : rel === e) && e.length > bestLen) {
                best = i;
                bestLen = e.length;
            }
        }
    });
    return best;
}

function listSources(): string[] {
    const out: string[] = [...SOURCE_FILES];
    const walk = (dir: string): void => {
        for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
            const rel = `${dir}/${e.name}`;
            if (e.isDirectory()) walk(rel);
            else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(rel);
        }
    };
    for (const d of SOURCE_DIRS) walk(d);
    return out.sort();
}

interface Edge {
    from: string;
    to: string;
}

/** Relative imports resolved to files; bare package names returned apart. */
function importsOf(rel: string): { local: string[]; packages: string[] } {
    const info = ts.preProcessFile(fs.readFileSync(path.join(ROOT, rel), "utf8"), true, true);
    const local: string[] = [];
    const packages: string[] = [];
    for (const { fileName: spec } of info.importedFiles) {
        if (!spec.startsWith(".")) {
            packages.push(spec);
            continue;
        }
        const base = path.join(path.dirname(rel), spec);
        if (path.normalize(base).startsWith("build/")) {
            // The compiled copy: only the entries in bin/ may load it (when it is fresh, bin/fresh.js).
            assert.ok(rel.startsWith("bin/") && rel.endsWith(".js"), `${rel} imports the compiled copy ${spec}; only bin/*.js entries may`);
            continue;
        }
        const hit = ["", ".ts", ".js", "/index.ts"]
            .map((ext) => base + ext)
            .find((p) => fs.existsSync(path.join(ROOT, p)) && fs.statSync(path.join(ROOT, p)).isFile());
        assert.ok(hit !== undefined, `${rel} imports ${JSON.stringify(spec)}, which resolves to no file`);
        local.push(path.normalize(hit));
    }
    return { local, packages };
}

function graph(): { files: string[]; edges: Edge[]; packages: Map<string, string[]> } {
    const files = listSources();
    const edges: Edge[] = [];
    const packages = new Map<string, string[]>();
    for (const f of files) {
        const { local, packages: pkgs } = importsOf(f);
        for (const to of local) edges.push({ from: f, to });
        packages.set(f, pkgs);
    }
    return { files, edges, packages };
}

/** Tarjan's strongly connected components with more than one member, or a self-import. */
function cycles(files: string[], edges: Edge[]): string[][] {
    const next = new Map<string, string[]>(files.map((f) => [f, []]));
    for (const e of edges) next.get(e.from)?.push(e.to);
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const found: string[][] = [];
    const visit = (v: string): void => {
        idx.set(v, index);
        low.set(v, index++);
        stack.push(v);
        on.add(v);
        for (const w of next.get(v) ?? []) {
            if (!idx.has(w)) {
                visit(w);
                low.set(v, Math.min(low.get(v)!, low.get(w)!));
            } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
        }
        if (low.get(v) === idx.get(v)) {
            const scc: string[] = [];
            let w: string;
            do {
                w = stack.pop()!;
                on.delete(w);
                scc.push(w);
            } while (w !== v);
            if (scc.length > 1 || (next.get(v) ?? []).includes(v)) found.push(scc.sort());
        }
    };
    for (const f of files) if (!idx.has(f)) visit(f);
    return found;
}

test("every source module has a layer", () => {
    const unplaced = listSources().filter((f) => layerOf(f) < 0);
    assert.deepEqual(unplaced, [], "add these to LAYERS in tests/program/import-graph.test.ts (and to docs/development.md)");
});

test("no import cycle among the program's, the CLI's and lib/'s modules", () => {
    const { files, edges } = graph();
    assert.ok(edges.length > 100, `only ${edges.length} imports found: the scanner is not reading the sources`);
    assert.deepEqual(cycles(files, edges), []);
});

test("no upward import: a module imports only from its own layer or a lower one", () => {
    const { edges } = graph();
    const unplaced = edges.filter((e) => layerOf(e.to) < 0).map((e) => `${e.from} imports ${e.to}, which is no source module (tests, scripts, bench?)`);
    assert.deepEqual(unplaced, []);
    const upward = edges
        .filter((e) => layerOf(e.to) > layerOf(e.from))
        .map((e) => `${e.from} (layer ${layerOf(e.from)}) imports ${e.to} (layer ${layerOf(e.to)})`);
    assert.deepEqual(upward, []);
});

test("lib/ is the functional core: no Pulumi SDK, nothing from the shells", () => {
    const { edges, packages } = graph();
    const bad = [
        ...[...packages]
            .filter(([f]) => f.startsWith("lib/"))
            .flatMap(([f, pkgs]) => pkgs.filter((p) => p.startsWith("@pulumi/")).map((p) => `${f} imports ${p}`)),
        ...edges.filter((e) => e.from.startsWith("lib/") && !e.to.startsWith("lib/")).map((e) => `${e.from} imports ${e.to}`),
        ...edges.filter((e) => e.from.startsWith("components/") && e.to.startsWith("cli/")).map((e) => `${e.from} imports ${e.to}`),
        // What the build compiles (bin/fresh.js watches it) never loads the policy pack, which it does not watch.
        ...edges.filter((e) => !e.from.startsWith("policy/") && e.to.startsWith("policy/")).map((e) => `${e.from} imports ${e.to}`),
    ];
    assert.deepEqual(bad, []);
});

test("the checks can fail: a cycle and an upward import are found in a graph that has them", () => {
    const files = ["lib/a.ts", "lib/b.ts", "lib/c.ts"];
    assert.deepEqual(
        cycles(files, [
            { from: "lib/a.ts", to: "lib/b.ts" },
            { from: "lib/b.ts", to: "lib/c.ts" },
            { from: "lib/c.ts", to: "lib/a.ts" },
        ]),
        [files],
    );
    assert.deepEqual(
        cycles(files, [
            { from: "lib/a.ts", to: "lib/b.ts" },
            { from: "lib/b.ts", to: "lib/c.ts" },
        ]),
        [],
    );
    assert.ok(layerOf("lib/build/ensure.ts") > layerOf("lib/plan.ts"));
    assert.ok(layerOf("lib/hashing/inputs.ts") > layerOf("lib/hashing/digest.ts"), "the longest entry wins");
});
