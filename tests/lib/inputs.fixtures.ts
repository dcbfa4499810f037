/** Temp-dir trees for the hashing tests (real files, real modes). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type Tree = Record<string, string | { content: string; mode?: number } | { symlink: string }>;

/** A fresh temp dir, removed when the process exits. */
export function tempDir(prefix = "thinlayer-test-"): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    process.once("exit", () => fs.rmSync(d, { recursive: true, force: true }));
    return d;
}

/** Writes `tree` under `root` in the given order (default: as listed). */
export function writeTree(root: string, tree: Tree, order?: string[]): void {
    for (const rel of order ?? Object.keys(tree)) {
        const spec = tree[rel];
        const abs = path.join(root, rel);
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        if (typeof spec === "string") {
            fs.writeFileSync(abs, spec);
            fs.chmodSync(abs, 0o644);
        } else if ("symlink" in spec) {
            fs.symlinkSync(spec.symlink, abs);
        } else {
            fs.writeFileSync(abs, spec.content);
            fs.chmodSync(abs, spec.mode ?? 0o644);
        }
    }
}

/** A temp dir holding `tree`. */
export function makeTree(tree: Tree, order?: string[]): string {
    const d = tempDir();
    writeTree(d, tree, order);
    return d;
}

/** Copies a directory (recursively, keeping modes). */
export function copyDir(src: string, dest: string): void {
    fs.cpSync(src, dest, { recursive: true, preserveTimestamps: false });
}

/** Sets a private cache dir for this test process so tests never share the project's cache. */
export function isolateCache(): string {
    const d = tempDir("thinlayer-cache-");
    process.env.THINLAYER_CACHE_DIR = d;
    return d;
}
