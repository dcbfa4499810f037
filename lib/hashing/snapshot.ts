/**
 * Input snapshots: the whole result of one `computeInputs` (file list, per-file hashes, the image
 * hash), reused by the next run when nothing the first run looked at has changed. This is what
 * makes a warm `thinlayer plan` cost one lstat per input file and nothing else: no directory
 * walk, no ignore matching, no sort, no digest.
 *
 * What "nothing changed" means, and why it is enough:
 *   - The key: the Dockerfile text, the ignore patterns in force (and which file they came from),
 *     the build args, platform, base hash, role, the context and Dockerfile paths, and a
 *     fingerprint of the code that computes the result (so a thinlayer upgrade or a local edit
 *     of lib/ never serves a result the new code would not give), and the user and groups that
 *     run it (a fresh run's result depends on read permission). These are read every run (they
 *     are small) and must match exactly.
 *   - Every lookup the resolution of COPY/ADD sources made (stat, lstat, readdir) is recorded as a
 *     probe with the signature it saw (device, inode, mode, size, mtime, ctime; or the error code
 *     when it failed). A readdir is recorded as a stat of the directory taken before the listing:
 *     creating, deleting or renaming an entry updates the directory's mtime and ctime, so an
 *     unchanged directory signature means an unchanged listing (git's untracked cache relies on
 *     the same rule).
 *   - Every input file is recorded with its lstat signature, as the stat cache does: an edit
 *     always moves ctime, so equal signatures mean equal content.
 * A snapshot whose probes or files were modified within `racyMs` of the run that made it is not
 * saved (a second change inside the same timestamp tick would be invisible). Any difference at all
 * means the full computation runs; the result never depends on whether a snapshot was used.
 *
 * Format (one file per (role, context, Dockerfile) slot under <cacheDir>/snapshots/): a magic
 * line, a JSON header (key, hash, probes), then the per-file signatures as float64, the
 * NUL-separated paths, the hex sha256s, and each InputFile's own size (float64) and executable
 * bit (a byte) as the computation gave them (a symlink's differ from its lstat). Binary so a
 * 20,000-file snapshot loads in about a millisecond.
 *
 * Set THINLAYER_SNAPSHOTS=0 to turn snapshots off (e.g. on a filesystem that does not update
 * directory timestamps); the stat cache still applies.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { frameDigest, type Record_ } from "./digest";
import { createRequire } from "node:module";
import { checkSignatures, nativeBinary, SIGNATURE_FIELDS as NUMS } from "./statcheck";
import { identity, identitySlotName, reliableFs } from "./filehash";
import type { InputFile } from "../model";
import { PROJECT_ROOT } from "../root";
import { sameSignature, take, type Probe, type Signature } from "../context/lookups";

/** The snapshot format. The code that decides a result is fingerprinted separately (codeFingerprint). */
const SNAPSHOT_VERSION = 4;
/** The modules whose code decides an image's inputs and hash (paths under lib/). */
const DECIDING_MODULES = [
    "hashing/inputs",
    "context/resolve",
    "context/lookups",
    "hashing/digest",
    "hashing/filehash",
    "hashing/snapshot",
    "hashing/statcheck",
    "dockerfile/analyze",
    "dockerfile/words",
    "context/dockerignore",
    "context/pathmatch",
];
/** Packages whose code decides them too (Dockerfile parsing, ignore matching), and the native check. */
const DECIDING_PACKAGES = ["dockerfile-ast", "@balena/dockerignore"];
const MAGIC = Buffer.from(`TLSNAP${SNAPSHOT_VERSION}\n`);
/** Slots kept; the oldest (by mtime) beyond this are removed when one is written. */
const MAX_SNAPSHOTS = 64;

/** A file as the snapshot keeps it: its InputFile plus the lstat it was hashed under. */
export interface SnapshotFile extends InputFile {
    sig: readonly number[];
}

export interface Snapshot {
    key: string;
    hash: string;
    probes: Probe[];
    files: SnapshotFile[];
    totalBytes: number;
    /** Some input is under .git/ (the result carries a warning). */
    readsGit: boolean;
    /** What the resolution found besides files (warnings, with their Dockerfile line). */
    notes: { line: number; text: string }[];
}

let fingerprint: string | null | undefined;

/**
 * sha256 over everything that could change a result without changing the files: the source of
 * the deciding lib/ modules, the package.json of the deciding packages, the project's lockfile
 * (the exact version of every package, theirs included), the native check's binary, and the
 * Node version. Read once per process (~0.5 ms). null when a module cannot be read (snapshots
 * are then off: a result could outlive its code).
 */
export function codeFingerprint(): string | null {
    if (fingerprint === undefined) {
        try {
            const h = createHash("sha256").update(process.version);
            for (const file of fingerprintInputs()) {
                const bytes = fs.readFileSync(file);
                h.update(`\0${file}\0${bytes.length}\0`).update(bytes);
            }
            fingerprint = h.digest("hex");
        } catch {
            fingerprint = null;
        }
    }
    return fingerprint;
}

/**
 * Where the deciding modules are: lib/ for the TypeScript, build/lib/ for the compiled code, the
 * per-file tree and the bundled CLI alike (the bundle, build/bin/thinlayer.js, is made from that
 * tree in the same build, so both fingerprint the same files and share their snapshots).
 */
function libDir(): string {
    return path.extname(__filename) === ".js" ? path.join(PROJECT_ROOT, "build", "lib") : path.join(PROJECT_ROOT, "lib");
}

/**
 * The files the fingerprint reads (throws when a deciding module or package cannot be found):
 * npm's record of what is installed (node_modules/.package-lock.json) and the lockfile when they
 * exist; under other package managers the deciding packages' package.json still count.
 */
export function fingerprintInputs(): string[] {
    const req = createRequire(__filename);
    const root = PROJECT_ROOT;
    const optional = [path.join(root, "node_modules", ".package-lock.json"), path.join(root, "package-lock.json"), nativeBinary()];
    return [
        ...DECIDING_MODULES.map((m) => path.join(libDir(), m + path.extname(__filename))),
        ...DECIDING_PACKAGES.map((p) => packageJson(root, p, req)),
        ...optional.filter((f): f is string => f !== undefined && fs.existsSync(f)),
    ];
}

/**
 * A package's package.json as require.resolve finds it (its real path), looked up directly in the
 * project's node_modules first: Node's resolver costs ~1.5 ms a package in a fresh process.
 */
function packageJson(root: string, name: string, req: NodeJS.Require): string {
    try {
        return fs.realpathSync.native(path.join(root, "node_modules", name, "package.json"));
    } catch {
        return req.resolve(`${name}/package.json`);
    }
}

/** Forgets the fingerprint (benchmarks: each measured call pays for it, as a new process would). */
export function resetFingerprintForTests(): void {
    fingerprint = undefined;
}

/** The snapshot key: everything besides the file system that decides the result, the code that decides it, and who runs it. */
export function snapshotKey(parts: readonly Record_[]): string {
    return frameDigest(`thinlayer-snapshot-v${SNAPSHOT_VERSION}`, [["code", codeFingerprint() ?? ""], ["user", ...identity()], ...parts]);
}

/**
 * Whether snapshots are on for a context: THINLAYER_SNAPSHOTS=0 turns them off; so does code that
 * cannot be fingerprinted, and a context on a network, FUSE or VM-shared filesystem.
 */
export function snapshotsEnabled(contextDir?: string): boolean {
    if (process.env.THINLAYER_SNAPSHOTS === "0" || codeFingerprint() === null) return false;
    if (contextDir === undefined) return true;
    return reliableFs(contextDir);
}

function slotFile(cacheDir: string, slot: string): string {
    // Per identity too, so runs by two users (say, with and without sudo) do not evict each other.
    return path.join(cacheDir, "snapshots", `${identitySlotName(slot)}.snap`);
}

/**
 * The snapshot's result when the slot holds one for `key` and every probe and file still has the
 * signature it had; else undefined. Never throws: a missing, corrupt or stale snapshot is a miss.
 */
export function reuseSnapshot(
    cacheDir: string,
    slot: string,
    key: string,
    root: string,
): { hash: string; count: number; totalBytes: number; readsGit: boolean; notes: { line: number; text: string }[]; files: () => InputFile[] } | undefined {
    let buf: Buffer;
    try {
        buf = fs.readFileSync(slotFile(cacheDir, slot));
    } catch {
        return undefined;
    }
    try {
        if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
        let off = MAGIC.length;
        const headerLen = buf.readUInt32LE(off);
        off += 4;
        const header = JSON.parse(buf.toString("utf8", off, off + headerLen)) as {
            key: string;
            hash: string;
            probes: Probe[];
            count: number;
            pathBytes: number;
            totalBytes: number;
            readsGit: boolean;
            notes: { line: number; text: string }[];
        };
        if (header.key !== key) return undefined;
        off = align8(off + headerLen);
        for (const [kind, abs, sig] of header.probes) {
            if (!sameSignature(take(kind, abs).sig, sig)) return undefined;
        }
        const n = header.count;
        const nums = new Float64Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + n * NUMS * 8));
        off += n * NUMS * 8;
        const pathBuf = buf.subarray(off, off + header.pathBytes);
        off += header.pathBytes;
        const shaStart = off;
        off += n * 64;
        const sizesStart = off;
        off += n * 8;
        const exec = buf.subarray(off, off + n);
        if (
            off + n !== buf.length ||
            typeof header.hash !== "string" ||
            typeof header.totalBytes !== "number" ||
            typeof header.readsGit !== "boolean" ||
            !Array.isArray(header.notes)
        )
            return undefined;
        // The hot loop of a warm run: one lstat per input file, compared field by field.
        if (checkSignatures(root, pathBuf, nums) !== n) return undefined;
        // Built only when asked for: a warm caller often needs only the hash.
        const files = (): InputFile[] => {
            const paths = n === 0 ? [] : pathBuf.toString("utf8").split("\0");
            const shas = buf.toString("latin1", shaStart, shaStart + n * 64);
            const sizes = new Float64Array(buf.buffer.slice(buf.byteOffset + sizesStart, buf.byteOffset + sizesStart + n * 8));
            const out = new Array<InputFile>(n);
            for (let i = 0; i < n; i++) out[i] = { path: paths[i], size: sizes[i], executable: exec[i] === 1, sha256: shas.slice(i * 64, i * 64 + 64) };
            return out;
        };
        return { hash: header.hash, count: n, totalBytes: header.totalBytes, readsGit: header.readsGit, notes: header.notes, files };
    } catch {
        return undefined; // a lookup failed in a new way (e.g. ENOTDIR) or the file is damaged: recompute
    }
}

/**
 * Saves `snap` in its slot unless something it depends on changed within `racyMs` before
 * `startedMs` (or after it). Returns whether it was saved. Failures to write cost speed only.
 */
export function saveSnapshot(cacheDir: string, slot: string, snap: Snapshot, root: string, startedMs: number, racyMs: number): boolean {
    const limit = startedMs - racyMs;
    const racy = (sig: Signature) => typeof sig !== "string" && (sig[4] >= limit || sig[5] >= limit); // a realpath has no time: the lstats of its links do
    if (snap.probes.some(([, , sig]) => racy(sig)) || snap.files.some((f) => racy(f.sig))) return false;
    // Every device involved (a mount inside the context) must be one whose timestamps can be trusted.
    const devices = new Map<number, string>();
    // A directory is asked about itself (a mount point's own device is the mounted one); anything else, its directory.
    const isDir = (sig: readonly number[]) => (sig[2] & 0o170000) === 0o040000;
    for (const [, abs, sig] of snap.probes) if (typeof sig !== "string" && !devices.has(sig[0])) devices.set(sig[0], isDir(sig) ? abs : path.dirname(abs));
    for (const f of snap.files) if (!devices.has(f.sig[0])) devices.set(f.sig[0], path.dirname(path.join(root, f.path)));
    for (const dir of devices.values()) if (!reliableFs(dir)) return false;
    const n = snap.files.length;
    const pathBytes = Buffer.from(snap.files.map((f) => f.path).join("\0"), "utf8");
    const header = Buffer.from(
        JSON.stringify({
            key: snap.key,
            hash: snap.hash,
            probes: snap.probes,
            count: n,
            pathBytes: pathBytes.length,
            totalBytes: snap.totalBytes,
            readsGit: snap.readsGit,
            notes: snap.notes,
        }),
        "utf8",
    );
    const headEnd = align8(MAGIC.length + 4 + header.length);
    const nums = new Float64Array(n * NUMS);
    snap.files.forEach((f, i) => nums.set(f.sig, i * NUMS));
    const head = Buffer.alloc(headEnd);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(header.length, MAGIC.length);
    header.copy(head, MAGIC.length + 4);
    const body = Buffer.concat([
        head,
        Buffer.from(nums.buffer),
        pathBytes,
        Buffer.from(snap.files.map((f) => f.sha256).join(""), "latin1"),
        Buffer.from(Float64Array.from(snap.files, (f) => f.size).buffer),
        Buffer.from(snap.files.map((f) => (f.executable ? 1 : 0))),
    ]);
    const file = slotFile(cacheDir, slot);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
        // Private: paths and hashes of files only this user may be able to read.
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        fs.writeFileSync(tmp, body, { mode: 0o600 });
        fs.renameSync(tmp, file);
        prune(path.dirname(file));
        return true;
    } catch {
        fs.rmSync(tmp, { force: true });
        return false;
    }
}

function prune(dir: string): void {
    const all = fs.readdirSync(dir);
    // Temp files of runs that died before their rename (an hour is far longer than any write).
    for (const f of all.filter((x) => x.endsWith(".tmp"))) {
        const st = fs.statSync(path.join(dir, f), { throwIfNoEntry: false });
        if (st !== undefined && Date.now() - st.mtimeMs > 3_600_000) fs.rmSync(path.join(dir, f), { force: true });
    }
    const names = all.filter((f) => f.endsWith(".snap"));
    if (names.length <= MAX_SNAPSHOTS) return;
    // A concurrent prune may have removed some already.
    const byAge = names.map((f) => ({ f, t: fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.mtimeMs ?? 0 })).sort((a, b) => a.t - b.t);
    for (const { f } of byAge.slice(0, names.length - MAX_SNAPSHOTS)) fs.rmSync(path.join(dir, f), { force: true });
}

function align8(n: number): number {
    return (n + 7) & ~7;
}

// Fingerprint the code as it is when loaded: a long-lived process whose lib/ is edited later keeps
// running the old code, so it must keep filing results under the old code's fingerprint.
codeFingerprint();
