/**
 * The optional native accelerator for warm runs (native/statcheck, an optionalDependency built
 * by node-gyp at `npm ci`): lstat a list of files and compare each with a recorded signature in
 * one call, without building an fs.Stats object per file. About 2.5x faster than fs.lstatSync
 * on Node 20; the answer is the same either way (tests compare the two).
 *
 * Without it (no C compiler at install time, Windows, or THINLAYER_NATIVE=0) thinlayer uses
 * fs.lstatSync. Under CI=true the test suite requires it, so CI measures what users get.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";

interface Native {
    check(root: Buffer, paths: Buffer, expected: Float64Array): number;
}

/** Numbers per file in `expected`: dev, ino, mode, size, mtimeMs, ctimeMs. */
export const SIGNATURE_FIELDS = 6;

let loaded: { native?: Native; error?: string } | undefined;

function load(): { native?: Native; error?: string } {
    if (loaded === undefined) {
        try {
            const m = createRequire(__filename)("thinlayer-statcheck") as Partial<Native>;
            loaded = typeof m.check === "function" ? { native: m as Native } : { error: "thinlayer-statcheck has no check()" };
        } catch (e) {
            loaded = { error: (e as Error).message.split("\n")[0] };
        }
    }
    return loaded;
}

/**
 * The native binary's path when it is built, used or not (part of the snapshot code fingerprint,
 * so THINLAYER_NATIVE=0 runs and native runs share snapshots); never loads it.
 */
export function nativeBinary(): string | undefined {
    try {
        return createRequire(__filename).resolve("thinlayer-statcheck/build/Release/statcheck.node");
    } catch {
        return undefined;
    }
}

/** Which implementation `checkSignatures` uses, and why not the native one when it doesn't. */
export function statcheckImpl(): { impl: "native" | "js"; reason?: string } {
    if (process.env.THINLAYER_NATIVE === "0") return { impl: "js", reason: "THINLAYER_NATIVE=0" };
    const { native, error } = load();
    return native !== undefined ? { impl: "native" } : { impl: "js", reason: error };
}

const NO_THROW = { throwIfNoEntry: false } as const;

/**
 * The index of the first of `paths` (relative to `root`, NUL-separated UTF-8) whose lstat fails
 * (for any reason) or differs from its `expected` signature, or the number of paths when every
 * one matches. Never throws for a file-system reason.
 * `impl` forces one implementation (tests and benchmarks).
 */
export function checkSignatures(root: string, paths: Buffer, expected: Float64Array, impl = statcheckImpl().impl): number {
    const prefix = root.endsWith("/") ? root : `${root}/`;
    const n = expected.length / SIGNATURE_FIELDS;
    if (n === 0) return 0;
    if (impl === "native") {
        const { native } = load();
        if (native === undefined) throw new Error("thinlayer-statcheck is not built (run npm ci with a C compiler, or use THINLAYER_NATIVE=0)");
        return native.check(Buffer.from(prefix, "utf8"), paths, expected);
    }
    const rel = paths.toString("utf8").split("\0");
    for (let i = 0, k = 0; i < n; i++, k += SIGNATURE_FIELDS) {
        let st: fs.Stats | undefined;
        try {
            st = rel[i] === undefined ? undefined : fs.lstatSync(prefix + rel[i], NO_THROW);
        } catch {
            return i; // ENAMETOOLONG, EACCES, ENOTDIR...: a mismatch, as in the native check
        }
        if (
            st === undefined ||
            st.ino !== expected[k + 1] ||
            st.mtimeMs !== expected[k + 4] ||
            st.ctimeMs !== expected[k + 5] ||
            st.size !== expected[k + 3] ||
            st.mode !== expected[k + 2] ||
            st.dev !== expected[k]
        ) {
            return i;
        }
    }
    return n;
}
