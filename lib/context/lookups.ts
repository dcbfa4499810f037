/**
 * The filesystem lookups made while resolving a build context (stat, lstat, realpath, readdir),
 * each optionally remembered with what it saw, so that an input snapshot (lib/hashing/snapshot.ts)
 * can later check that none of them would see anything different.
 */
import * as fs from "node:fs";

/**
 * What a lookup saw: for a stat, [dev, ino, mode, size, mtimeMs, ctimeMs]; for a realpath, the
 * real path (absolute, so never mistaken for an error code); or the error code when it failed.
 */
export type Signature = readonly number[] | string;
/** "l": lstat, "s": stat (follows links; also used for a directory that was listed), "r": realpath. */
export type ProbeKind = "l" | "s" | "r";
export type Probe = [kind: ProbeKind, abs: string, sig: Signature];

const NO_THROW = { throwIfNoEntry: false } as const;

/** The lstat signature of a file or directory (also SnapshotFile.sig: what a file was hashed under). */
export function fileSignature(st: fs.Stats): number[] {
    return [st.dev, st.ino, st.mode, st.size, st.mtimeMs, st.ctimeMs];
}

export function take(kind: ProbeKind, abs: string): { st?: fs.Stats; sig: Signature } {
    try {
        if (kind === "r") return { sig: fs.realpathSync.native(abs) };
        const st = kind === "l" ? fs.lstatSync(abs, NO_THROW) : fs.statSync(abs, NO_THROW);
        return st === undefined ? { sig: "ENOENT" } : { st, sig: fileSignature(st) };
    } catch (e) {
        return { sig: (e as NodeJS.ErrnoException).code ?? "ERROR" };
    }
}

export function sameSignature(a: Signature, b: Signature): boolean {
    if (typeof a === "string" || typeof b === "string") return a === b;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
}

/**
 * The filesystem lookups made while resolving COPY sources. Used in place of fs.*Sync so each
 * lookup is remembered with what it saw. Without recording (`new Probes(false)`) it is plain fs.
 */
export class Probes {
    private readonly seen = new Map<string, Probe>();
    constructor(private readonly record = true) {}

    /** fs.statSync, or undefined when the path does not resolve. */
    stat(abs: string): fs.Stats | undefined {
        return this.probe("s", abs);
    }

    /** fs.lstatSync, or undefined when the path does not exist. */
    lstat(abs: string): fs.Stats | undefined {
        return this.probe("l", abs);
    }

    /** fs.realpathSync.native, or undefined when the path does not resolve. Remembered per path. */
    realpath(abs: string): string | undefined {
        const known = this.seen.get(`r${abs}`) ?? this.memo.get(abs);
        const sig = known !== undefined ? known[2] : this.probeSig("r", abs);
        return typeof sig === "string" && sig.startsWith("/") ? sig : undefined;
    }

    /** fs.readdirSync with file types; the directory's signature is taken first. Throws as readdir does. */
    readdir(abs: string): fs.Dirent[] {
        if (this.record) this.probe("s", abs);
        return fs.readdirSync(abs, { withFileTypes: true });
    }

    /** Everything looked up so far (for the snapshot). */
    all(): Probe[] {
        return [...this.seen.values()];
    }

    private probe(kind: ProbeKind, abs: string): fs.Stats | undefined {
        const { st, sig } = take(kind, abs);
        this.remember(kind, abs, sig);
        return st;
    }

    private probeSig(kind: ProbeKind, abs: string): Signature {
        const { sig } = take(kind, abs);
        this.remember(kind, abs, sig);
        return sig;
    }

    /** Realpaths are memoized even when not recording (they are asked once per directory). */
    private readonly memo = new Map<string, Probe>();

    private remember(kind: ProbeKind, abs: string, sig: Signature): void {
        const k = `${kind}${abs}`;
        if (this.record) {
            if (!this.seen.has(k)) this.seen.set(k, [kind, abs, sig]);
        } else if (kind === "r") {
            this.memo.set(abs, [kind, abs, sig]);
        }
    }
}
