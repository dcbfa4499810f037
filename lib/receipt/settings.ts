/**
 * The settings keys a deploy changes, compared with the same baseline the migrations use: the
 * stack's deployed outputs (`settings`, exported by index.ts) or the stack file at a git ref.
 * Only key names reach the receipt (it is posted on pull requests); values stay out of it.
 */
import { execFile } from "node:child_process";
import * as YAML from "yaml";
import { convertConfigValue, PROJECT } from "../config";
import type { PlanBaseline } from "../migrations";
import type { SettingsChange } from "./model";

/** Keys added, removed and changed from `before` to `after`, each sorted. */
export function diffSettings(before: Record<string, string>, after: Record<string, string>, source: string): SettingsChange {
    const added = Object.keys(after)
        .filter((k) => !(k in before))
        .sort();
    const removed = Object.keys(before)
        .filter((k) => !(k in after))
        .sort();
    const changed = Object.keys(after)
        .filter((k) => k in before && before[k] !== after[k])
        .sort();
    return { kind: "compared", source, added, removed, changed };
}

/** `KEY=VALUE` entries (the thinlayer:settings form) as a record; an entry without `=` is skipped. */
export function settingsFromPairs(pairs: unknown): Record<string, string> {
    const out: Record<string, string> = {};
    if (!Array.isArray(pairs)) return out;
    for (const p of pairs) {
        if (typeof p !== "string") continue;
        const i = p.indexOf("=");
        if (i > 0) out[p.slice(0, i)] = p.slice(i + 1);
    }
    return out;
}

function gitShow(cwd: string, spec: string): Promise<string | undefined> {
    return new Promise((resolve) => {
        execFile("git", ["show", spec], { cwd, maxBuffer: 16 << 20 }, (err, stdout) => resolve(err === null ? stdout : undefined));
    });
}

/** The settings at the baseline, or why they are not known. */
export async function settingsChange(projectDir: string, stack: string, current: Record<string, string>, from: PlanBaseline): Promise<SettingsChange> {
    if ("outputs" in from) {
        const s = from.outputs?.["settings" as keyof typeof from.outputs] as unknown;
        if (s === undefined || s === null)
            return { kind: "unknown", reason: `${from.source} has no \`settings\` output (never deployed, or deployed before it was exported)` };
        if (typeof s !== "object" || Array.isArray(s) || !Object.values(s).every((v) => typeof v === "string")) {
            return { kind: "unknown", reason: `${from.source}'s \`settings\` output is not a map of strings` };
        }
        return diffSettings(s as Record<string, string>, current, from.source);
    }
    if ("against" in from) {
        const source = `git ${from.against}`;
        // `<ref>:./path` is relative to cwd, so the project may sit anywhere in the repository.
        for (const name of [`Pulumi.${stack}.yaml`, `Pulumi.${stack}.yml`]) {
            const text = await gitShow(projectDir, `${from.against}:./${name}`);
            if (text === undefined) continue;
            const doc = (YAML.parse(text) ?? {}) as { config?: Record<string, unknown> };
            const raw = doc.config?.[`${PROJECT}:settings`];
            return diffSettings(settingsFromPairs(typeof raw === "string" ? convertConfigValue("array", raw) : raw), current, source);
        }
        return diffSettings({}, current, `${source} (no Pulumi.${stack}.yaml there: a new stack)`);
    }
    return { kind: "unknown", reason: "no baseline (pass --against <git ref> or --deployed)" };
}
