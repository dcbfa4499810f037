/**
 * Rollback via prior config: find an earlier release in the stack's update history and pin it in
 * Pulumi.<stack>.yaml, so the next `pulumi up` deploys exactly that release and builds nothing.
 *
 * Where the data comes from (checked against the Pulumi CLI source, pkg/cmd/pulumi/stack_history.go):
 * `pulumi stack history --json` prints, per update, {version, kind, startTime, message, environment,
 * config, result, endTime, resourceChanges} — the config the update ran with, but NOT its stack
 * outputs. The outputs of update N (appImageRef, settings, settingsHash, releaseId) come from
 * `pulumi stack export --version N`, whose root `pulumi:pulumi:Stack` resource carries them. The
 * Pulumi Cloud backend supports `--version`; DIY backends (s3://, file://) do not ("does not
 * provide the ability to export previous deployments"); there, pin with `--image <repo@sha256:…>`.
 *
 * A release is identified by what it runs: (app image digest, settings hash). The program exports
 * `releaseId` only for builds from source (a pinned update reports none), so the id is a label,
 * carried over to every update that ran the same (digest, settings).
 *
 * Everything here is pure (text in, values out); cli/rollback.ts does the I/O.
 */
import * as YAML from "yaml";
import { inputError, ThinlayerError } from "../errors";
import { PROJECT } from "../config";
import { settingsDigest } from "../hashing/digest";
import { DIGEST, DIGEST_REF } from "../rules";

/** One config value of a history entry, as `pulumi stack history --json` prints it. */
export interface HistoryConfigValue {
    value?: string;
    objectValue?: unknown;
    secret: boolean;
}

/** One update of `pulumi stack history --json` (the fields we use). */
export interface HistoryEntry {
    version: number;
    kind: string;
    startTime: string;
    message: string;
    environment: Record<string, string>;
    config: Record<string, HistoryConfigValue>;
    result: string;
    endTime?: string;
}

/** A release as an update's stack outputs describe it. */
export interface Release {
    /** `repo@sha256:…` the workloads ran. */
    appImageRef: string;
    /** Non-secret settings, NAME -> value. */
    settings: Record<string, string>;
    /** Hash of the settings: the program's settingsHash output, else the same settingsDigest over `settings`. */
    settingsHash: string;
    /** `rel-…` when the update built from source; propagated from any update of the same release. */
    releaseId?: string;
    /** The migrations hash the release ran with (the program's migrationsHash output), when known. */
    migrationsHash?: string;
    /** Migration ids the database had after the release's update (the program's `migrations` output), when known. */
    migrations?: string[];
}

/** A successful update and the release it deployed. */
export interface DeployedRelease extends Release {
    version: number;
    startTime: string;
    message: string;
    gitHead?: string;
    /** The update ran with a rollback pin (thinlayer:releaseImage set). */
    pinned: boolean;
}

export type Selection = { steps: number } | { to: string };

export interface Choice {
    current: DeployedRelease;
    target: DeployedRelease;
    /** Releases in order of first deployment, oldest first (what --steps counts over). */
    timeline: DeployedRelease[];
    /** Updates newer than the current one that did not succeed (worth a note). */
    newerFailures: HistoryEntry[];
}

/** Parses and checks `pulumi stack history --json` output; returns entries newest first. */
export function parseHistory(text: string, source = "pulumi stack history --json"): HistoryEntry[] {
    let data: unknown;
    try {
        data = JSON.parse(text);
    } catch (e) {
        throw inputError({
            input: source,
            value: "(not JSON)",
            allowed: "the JSON array `pulumi stack history --json` prints",
            fix: `check the file or the command: ${(e as Error).message}`,
        });
    }
    if (!Array.isArray(data)) {
        throw inputError({
            input: source,
            value: typeof data,
            allowed: "a JSON array of updates",
            fix: "pass the output of `pulumi stack history --json --stack <stack>`",
        });
    }
    const entries = data.map((raw, i) => {
        const e = raw as Partial<HistoryEntry>;
        if (typeof e !== "object" || e === null || typeof e.kind !== "string" || typeof e.result !== "string") {
            throw inputError({
                input: `${source} [${i}]`,
                value: JSON.stringify(raw).slice(0, 120),
                allowed: "an update with kind and result",
                fix: "pass unmodified `pulumi stack history --json` output",
            });
        }
        if (!Number.isInteger(e.version)) {
            throw inputError({
                input: `${source} [${i}].version`,
                value: JSON.stringify(e.version ?? null),
                allowed: "an integer update version (Pulumi CLI 3.x prints it)",
                fix: "upgrade the Pulumi CLI and rerun `pulumi stack history --json`",
            });
        }
        return {
            version: e.version as number,
            kind: e.kind,
            startTime: String(e.startTime ?? ""),
            message: String(e.message ?? ""),
            environment: (e.environment ?? {}) as Record<string, string>,
            config: (e.config ?? {}) as Record<string, HistoryConfigValue>,
            result: e.result,
            endTime: e.endTime,
        };
    });
    return entries.sort((a, b) => b.version - a.version);
}

/** Updates that deployed something and succeeded (`kind` update, `result` succeeded), newest first. */
export function successfulUpdates(history: HistoryEntry[]): HistoryEntry[] {
    return history.filter((h) => h.kind === "update" && h.result === "succeeded");
}

/**
 * What decides an update's release, from the history alone: the commit it ran and its non-secret
 * config. Two updates with the same signature deployed the same release (the images and settings
 * are content-addressed), so only one of them needs its outputs exported. Without a git head the
 * version itself is the signature (no sharing).
 */
export function releaseSignature(e: HistoryEntry): string {
    const head = e.environment["git.head"];
    if (head === undefined || head === "" || e.environment["git.dirty"] === "true") return `version:${e.version}`;
    const cfg = Object.keys(e.config)
        .sort()
        .filter((k) => !e.config[k].secret)
        .map((k) => [k, e.config[k].value ?? null]);
    return JSON.stringify([head, cfg]);
}

/** The root stack outputs of a `pulumi stack export` document (also a DIY checkpoint file). */
export function stackOutputsFromExport(text: string, source: string): Record<string, unknown> {
    let doc: { deployment?: { resources?: unknown[] }; checkpoint?: { latest?: { resources?: unknown[] } } };
    try {
        doc = JSON.parse(text);
    } catch (e) {
        throw inputError({ input: source, value: "(not JSON)", allowed: "the JSON `pulumi stack export` prints", fix: (e as Error).message });
    }
    const resources = (doc.deployment?.resources ?? doc.checkpoint?.latest?.resources ?? []) as Array<{ type?: string; outputs?: Record<string, unknown> }>;
    const stack = resources.find((r) => r.type === "pulumi:pulumi:Stack");
    if (stack === undefined) {
        throw inputError({
            input: source,
            value: "(no pulumi:pulumi:Stack resource)",
            allowed: "a stack export with the root stack resource",
            fix: "export a version that completed an update",
        });
    }
    return stack.outputs ?? {};
}

/** Reads a release from an update's stack outputs; undefined (with the reason) if they lack one. */
export function releaseFromOutputs(outputs: Record<string, unknown>): Release | string {
    const ref = outputs.appImageRef;
    if (typeof ref !== "string" || !DIGEST_REF.test(ref)) {
        return `no appImageRef output by digest (got ${ref !== null && typeof ref === "object" ? "a secret or object" : JSON.stringify(ref ?? null)})`;
    }
    const settings = settingsFrom(outputs.settings);
    if (settings === undefined) return "no readable settings output";
    // The program's own hash (lib/plan.ts), so a release read either way is one release.
    const settingsHash = typeof outputs.settingsHash === "string" ? outputs.settingsHash : settingsDigest(settings);
    const releaseId = typeof outputs.releaseId === "string" && outputs.releaseId !== "" ? outputs.releaseId : undefined;
    const migrationsHash = typeof outputs.migrationsHash === "string" && /^[a-f0-9]{64}$/.test(outputs.migrationsHash) ? outputs.migrationsHash : undefined;
    const migrations =
        Array.isArray(outputs.migrations) && outputs.migrations.every((m) => typeof m === "string") ? (outputs.migrations as string[]) : undefined;
    return {
        appImageRef: ref,
        settings,
        settingsHash,
        releaseId,
        ...(migrationsHash !== undefined ? { migrationsHash } : {}),
        ...(migrations !== undefined ? { migrations } : {}),
    };
}

/** The identity of a release: the app image digest and the settings hash. */
function releaseKey(r: Release): string {
    return `${digestOf(r.appImageRef)}|${r.settingsHash}`;
}

/**
 * The current release (that of the newest successful update) and every release in order of its
 * first successful deployment, oldest first; release ids carried across updates of the same
 * release (pinned updates report none). `labelled` is `deployed`, newest first, with those ids.
 */
export function releaseTimeline(
    deployed: DeployedRelease[],
    stack: string,
): { current: DeployedRelease; timeline: DeployedRelease[]; labelled: DeployedRelease[] } {
    const newestFirst = [...deployed].sort((a, b) => b.version - a.version);
    if (newestFirst.length === 0) {
        throw new ThinlayerError(
            `stack ${stack}: its history has no successful update with release outputs, so there is nothing to roll back to. Fix: deploy once with \`pulumi up --stack ${stack}\`, or pin an image directly with --image <repo@sha256:…>.`,
        );
    }
    const ids = new Map<string, string>();
    for (const d of newestFirst) if (d.releaseId !== undefined && !ids.has(releaseKey(d))) ids.set(releaseKey(d), d.releaseId);
    const labelled = newestFirst.map((d) => ({ ...d, releaseId: d.releaseId ?? ids.get(releaseKey(d)) }));
    const first = new Map<string, DeployedRelease>();
    for (const d of [...labelled].reverse()) if (!first.has(releaseKey(d))) first.set(releaseKey(d), d);
    const timeline = [...first.values()].sort((a, b) => a.version - b.version);
    return { current: labelled[0], timeline, labelled };
}

/**
 * Chooses the release to roll back to.
 *
 * `current` is the release of the newest successful update. Releases are ordered by their first
 * successful deployment (like capistrano's releases directory), so after a rollback to B (from C),
 * `--steps 1` goes on to the release before B, not back to the bad C.
 * - `{steps: N}`: the N-th release deployed before the current one (distinct releases only).
 * - `{to: X}`: X is a release id (`rel-…`), a digest (`sha256:…`) or a digest ref (`repo@sha256:…`);
 *   the newest successful update that ran it.
 */
export function chooseRelease(deployed: DeployedRelease[], history: HistoryEntry[], sel: Selection, stack: string): Choice {
    const { current, timeline, labelled } = releaseTimeline(deployed, stack);
    const newerFailures = history.filter((h) => h.version > current.version && h.kind === "update" && h.result !== "succeeded");

    if ("steps" in sel) {
        const at = timeline.findIndex((d) => releaseKey(d) === releaseKey(current));
        const older = timeline.slice(0, at).reverse();
        if (!Number.isInteger(sel.steps) || sel.steps < 1 || sel.steps > older.length) {
            throw inputError({
                input: "--steps",
                value: JSON.stringify(sel.steps),
                allowed: older.length
                    ? `an integer from 1 to ${older.length} (releases deployed before the current one in the history read)`
                    : "none: no release was deployed before the current one in the history read",
                fix: older.length
                    ? "pick a smaller N, or --to <release id|digest>"
                    : "read more history, or pin an image directly with --image <repo@sha256:…>",
            });
        }
        const chosen = older[sel.steps - 1];
        // Deploy the newest update of that release (its latest recorded outputs).
        const target = labelled.find((d) => releaseKey(d) === releaseKey(chosen)) ?? chosen;
        return { current, target, timeline, newerFailures };
    }

    const to = sel.to.trim();
    const match = (d: DeployedRelease) =>
        /^rel-[a-f0-9]+$/.test(to)
            ? d.releaseId === to
            : DIGEST.test(to)
              ? digestOf(d.appImageRef) === to
              : DIGEST_REF.test(to)
                ? d.appImageRef === to || digestOf(d.appImageRef) === digestOf(to)
                : false;
    if (!/^rel-[a-f0-9]+$/.test(to) && !DIGEST.test(to) && !DIGEST_REF.test(to)) {
        throw inputError({
            input: "--to",
            value: JSON.stringify(sel.to),
            allowed: "a release id (rel-<hex>), a digest (sha256:<64 hex>) or repo@sha256:<64 hex>",
            fix: "copy one from `thinlayer rollback --stack <s> --list`",
        });
    }
    const target = labelled.find(match);
    if (target === undefined) {
        const known = timeline.map((d) => d.releaseId ?? digestOf(d.appImageRef).slice(0, 19)).join(", ");
        throw inputError({
            input: "--to",
            value: JSON.stringify(to),
            allowed: `a release in the history read (${known})`,
            fix: "list them with --list; to pin an image that is not in the history, pass its full repo@sha256:… ref with --image",
        });
    }
    return { current, target, timeline, newerFailures };
}

/** The pin to write: the release image and its settings, as stack config values. */
export interface Pin {
    releaseImage: string;
    settings: Record<string, string>;
    /** The release's migrations hash; without it the program runs no migration Job while pinned. */
    migrationsHash?: string;
}

/**
 * Writes (or with `pin` null, clears) the rollback pin in the text of Pulumi.<stack>.yaml and
 * returns the new text. Uses the yaml Document API, so comments, key order and every other key
 * are kept. Clearing removes `thinlayer:releaseImage` (and `thinlayer:releaseMigrationsHash`) only: settings stay as they are.
 */
export function writePin(fileText: string, pin: Pin | null, file = "Pulumi.<stack>.yaml"): string {
    const doc: YAML.Document = YAML.parseDocument(fileText);
    if (doc.errors.length) {
        throw inputError({ input: file, value: "(invalid YAML)", allowed: "a valid stack config file", fix: doc.errors[0].message });
    }
    if (doc.contents === null) doc.contents = doc.createNode({});
    if (!doc.has("config")) doc.set("config", doc.createNode({}));
    const imageKey = `${PROJECT}:releaseImage`;
    const settingsKey = `${PROJECT}:settings`;
    const migrationsKey = `${PROJECT}:releaseMigrationsHash`;
    doc.deleteIn(["config", migrationsKey]);
    if (pin === null) {
        doc.deleteIn(["config", imageKey]);
    } else {
        if (!DIGEST_REF.test(pin.releaseImage)) {
            throw inputError({ input: imageKey, value: JSON.stringify(pin.releaseImage), allowed: "repo@sha256:<64 hex>", fix: "pin a release by digest" });
        }
        doc.setIn(["config", imageKey], pin.releaseImage);
        doc.setIn(["config", settingsKey], doc.createNode(Object.entries(pin.settings).map(([k, v]) => `${k}=${v}`)));
        if (pin.migrationsHash !== undefined) doc.setIn(["config", migrationsKey], pin.migrationsHash);
    }
    return doc.toString();
}

/** The settings of a stack file's `thinlayer:settings` (NAME=VALUE list) as a map. */
export function settingsOfStackFile(fileText: string): Record<string, string> {
    const doc = YAML.parse(fileText) as { config?: Record<string, unknown> } | null;
    return settingsFrom(doc?.config?.[`${PROJECT}:settings`] ?? []) ?? {};
}

/** Settings as an object map or a NAME=VALUE list; undefined if neither. */
function settingsFrom(v: unknown): Record<string, string> | undefined {
    if (Array.isArray(v)) {
        const out: Record<string, string> = {};
        for (const item of v) {
            if (typeof item !== "string" || !item.includes("=")) return undefined;
            out[item.slice(0, item.indexOf("="))] = item.slice(item.indexOf("=") + 1);
        }
        return out;
    }
    if (v !== null && typeof v === "object" && Object.values(v).every((x) => typeof x === "string")) return { ...(v as Record<string, string>) };
    return undefined;
}

/** What changes between two settings maps, for the printout (names only for removed keys). */
export function settingsChanges(from: Record<string, string>, to: Record<string, string>): string[] {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    return keys.flatMap((k) => (!(k in to) ? [`- ${k}`] : !(k in from) ? [`+ ${k}=${to[k]}`] : from[k] !== to[k] ? [`~ ${k}: ${from[k]} -> ${to[k]}`] : []));
}

function digestOf(ref: string): string {
    return DIGEST_REF.exec(ref)?.[2] ?? ref;
}
