/**
 * Dockerfile analysis (parsed with dockerfile-ast): stages, FROM references with ARG
 * substitution, and what every COPY/ADD reads from the build context.
 */
import * as fs from "node:fs";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { expand, splitWords } from "./words";
import { inputError } from "../errors";

export interface CopySpec {
    keyword: "COPY" | "ADD";
    /** 1-based line of the instruction. */
    line: number;
    /** Sources after variable expansion (context-relative, as written). */
    sources: string[];
    dest: string;
    chown?: string;
    chmod?: string;
}

/** A `RUN --mount=type=bind` without `from=`: the RUN reads `source` from the build context. */
export interface BindMountSpec {
    /** 1-based line of the RUN. */
    line: number;
    /** The mount's source after variable expansion (context-relative; "." when not given). */
    source: string;
    target: string;
}

/** One `RUN --mount=` flag, parsed (keys as Docker spells them; aliases folded). */
export interface RunMount {
    type: string;
    source?: string;
    from?: string;
    target?: string;
    options: Record<string, string>;
}

export interface RemoteSource {
    line: number;
    url: string;
    /** `ADD --checksum=` value, when given (then the URL is content-addressed). */
    checksum?: string;
}

export interface StageSpec {
    index: number;
    name?: string;
    /** Resolved FROM argument (an image ref, or the name of an earlier stage). */
    from: string;
    line: number;
    platform?: string;
}

export interface DockerfileAnalysis {
    stages: StageSpec[];
    /** External images the build reads: FROM refs (not stages) and COPY --from=<image>, resolved, in order. */
    fromRefs: string[];
    /** COPY/ADD instructions that read the build context. */
    copies: CopySpec[];
    /** RUN bind mounts that read the build context (they are inputs like COPY sources). */
    bindMounts: BindMountSpec[];
    remotes: RemoteSource[];
    /** One stage whose instructions only set metadata and copy context files. */
    copyOnly: boolean;
    /** Why copyOnly is false (empty when it is true). */
    notCopyOnly: string[];
    warnings: string[];
}

/** Instructions a daemonless builder can apply without running anything in the image. */
const METADATA = new Set(["ARG", "FROM", "COPY", "WORKDIR", "ENV", "USER", "EXPOSE", "CMD", "ENTRYPOINT", "LABEL", "STOPSIGNAL"]);

/**
 * The COPY/ADD flags thinlayer models (for the hash and the daemonless layer). Any other flag
 * (--exclude, --parents, a future one) makes the Dockerfile not copy-only, with a warning.
 */
const COPY_FLAGS: Record<"COPY" | "ADD", ReadonlySet<string>> = {
    COPY: new Set(["from", "chown", "chmod", "link"]),
    ADD: new Set(["from", "chown", "chmod", "link", "checksum", "keep-git-dir"]),
};

/** Reads a Dockerfile; a missing or unreadable file is an input error naming the path. */
export function readDockerfile(file: string, input = "Dockerfile"): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw inputError({
            input,
            value: JSON.stringify(file),
            allowed: "an existing, readable Dockerfile",
            fix:
                code === "ENOENT"
                    ? `create it, or point the config (baseDockerfile/appDockerfile, relative to appDir) at the right file`
                    : `check permissions (${code ?? (e as Error).message})`,
        });
    }
}

/**
 * Analyzes Dockerfile text. `buildArgs` override ARG defaults (as `--build-arg` does).
 * Throws an input error (with file:line) when the file has no FROM or an instruction is malformed.
 */
export function analyzeDockerfile(text: string, file: string, buildArgs: Record<string, string>): DockerfileAnalysis {
    const df = DockerfileParser.parse(text);
    const instructions = df.getInstructions();
    const fromCount = instructions.filter((i) => i.getKeyword() === "FROM").length;
    if (fromCount === 0) {
        throw inputError({
            input: file,
            value: "(no FROM instruction)",
            allowed: "a Dockerfile with at least one FROM",
            fix: "start the Dockerfile with FROM <image> (ARG lines may precede it)",
        });
    }
    const globalArgs = new Map<string, string | undefined>();
    const stages: StageSpec[] = [];
    const fromRefs: string[] = [];
    const copies: CopySpec[] = [];
    const bindMounts: BindMountSpec[] = [];
    const remotes: RemoteSource[] = [];
    const warnings: string[] = [];
    const notCopyOnly: string[] = [];
    let scope = new Map<string, string>();

    const stageNames = () => new Set(stages.flatMap((s) => [s.name, String(s.index)]).filter((x): x is string => x !== undefined));
    for (const ins of instructions) {
        const kw = ins.getKeyword();
        const line = ins.getRange().start.line + 1;
        const where = `${file}:${line}`;
        if (!METADATA.has(kw)) notCopyOnly.push(`${where}: ${kw}`);
        if (kw === "ARG") {
            for (const { name, value } of parseArg(ins)) {
                if (stages.length === 0) {
                    const v = buildArgs[name] ?? (value === undefined ? undefined : expand(value, mapOf(globalArgs)));
                    globalArgs.set(name, v);
                } else {
                    const v = buildArgs[name] ?? (value !== undefined ? expand(value, scope) : globalArgs.get(name));
                    if (v !== undefined) scope.set(name, v);
                }
            }
        } else if (kw === "ENV") {
            for (const [name, value] of parseEnv(ins)) scope.set(name, expand(value, scope));
        } else if (kw === "FROM") {
            const args = ins.getArguments().map((a) => a.getValue());
            const image = args[0];
            if (image === undefined) throw malformed(where, "FROM", "FROM <image> [AS <name>]");
            const ref = expand(image, mapOf(globalArgs));
            const name = args.length >= 3 && args[1].toLowerCase() === "as" ? args[2].toLowerCase() : undefined;
            const platformFlag = (ins as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] })
                .getFlags()
                .find((f) => f.getName() === "platform");
            const isStage = stageNames().has(ref.toLowerCase());
            if (!isStage) {
                fromRefs.push(ref);
                if (ref !== "" && ref !== "scratch" && !/@sha256:[a-f0-9]{64}$/.test(ref)) {
                    warnings.push(
                        `${where}: FROM ${ref} is a mutable tag: the hash covers the reference, not the image behind it, so a new upstream image does not rebuild (pin it as ${ref}@sha256:<digest> for that)`,
                    );
                }
            }
            if (ref === "") warnings.push(`${where}: FROM expands to an empty image reference (is a build arg missing?)`);
            // A stage starts with the global ARG values it redeclares, plus ENV inherited from a parent stage (not tracked).
            scope = new Map();
            stages.push({ index: stages.length, name, from: ref, line, platform: platformFlag?.getValue() ?? undefined });
        } else if (kw === "RUN") {
            // RUN is never copy-only (pushed above), so only what the mounts read matters here.
            for (const flag of flagsOf(ins)) {
                if (flag.getName() !== "mount") continue;
                const m = parseRunMount(expand(flag.getValue() ?? "", scope, false), where);
                if (m.type === "bind") {
                    if (m.from === undefined) {
                        bindMounts.push({ line, source: m.source ?? ".", target: m.target ?? "" });
                    } else if (!stageNames().has(m.from.toLowerCase())) {
                        fromRefs.push(m.from); // an image: its reference is an input, like COPY --from=<image>
                    }
                    // from=<stage>: reads the stage's files, which the hash already covers through that stage.
                } else if (m.type === "cache" && m.from !== undefined && !stageNames().has(m.from.toLowerCase())) {
                    fromRefs.push(m.from); // a cache mount seeded from an image
                }
                // type=cache/tmpfs/ssh read nothing from the context. type=secret reads a secret
                // the builder is given at build time; it is deliberately NOT hashed (secret values
                // must never reach a hash, tag or log), so changing a secret does not rebuild.
            }
        } else if (kw === "COPY" || kw === "ADD") {
            const flags = Object.fromEntries(
                (ins as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags().map((f) => [f.getName(), f.getValue() ?? ""]),
            );
            for (const flag of flagsOf(ins)) {
                const name = flag.getName();
                if (COPY_FLAGS[kw].has(name)) continue;
                const shown = flag.getValue() === null ? `--${name}` : `--${name}=${flag.getValue() ?? ""}`;
                notCopyOnly.push(`${where}: ${kw} ${shown}`);
                warnings.push(
                    `${where}: ${kw} ${shown} is not modelled by thinlayer: this Dockerfile is built by the image builder, never daemonless, ` +
                        `and the hash covers every file the sources name as if the flag were absent (a change there may cost a rebuild, never miss one)`,
                );
            }
            const words = copyWords(ins, scope);
            if (words === undefined) continue; // heredoc: its content is part of the Dockerfile text
            if (words.length < 2) throw malformed(where, kw, `${kw} [--chown=…] <src>... <dest>`);
            const dest = words[words.length - 1];
            const srcs = words.slice(0, -1);
            const from = flags["from"];
            if (from !== undefined) {
                const f = expand(from, scope);
                if (!stageNames().has(f.toLowerCase())) fromRefs.push(f);
                notCopyOnly.push(`${where}: ${kw} --from=${f}`);
                continue; // reads no context files
            }
            const local: string[] = [];
            for (const s of srcs) {
                if (kw === "ADD" && isRemote(s)) {
                    const checksum = flags["checksum"];
                    remotes.push({ line, url: s, checksum });
                    notCopyOnly.push(`${where}: ADD ${s}`);
                    if (checksum === undefined) {
                        warnings.push(
                            `${where}: ADD ${s} is hashed by its URL, not its content: a change behind the URL will not rebuild the image (pin it with ADD --checksum=sha256:…, or download it in a RUN step you version)`,
                        );
                    }
                } else {
                    local.push(s);
                }
            }
            if (kw === "ADD" && local.length) notCopyOnly.push(`${where}: ADD (may extract archives)`);
            if (local.length) copies.push({ keyword: kw, line, sources: local, dest, chown: flags["chown"], chmod: flags["chmod"] });
        }
    }
    if (stages.length > 1) notCopyOnly.push(`${file}: ${stages.length} stages`);
    return { stages, fromRefs, copies, bindMounts, remotes, copyOnly: notCopyOnly.length === 0, notCopyOnly, warnings };
}

type Flag = { getName(): string; getValue(): string | null };

function flagsOf(ins: Instruction): Flag[] {
    const f = (ins as unknown as { getFlags?: () => Flag[] }).getFlags;
    return typeof f === "function" ? f.call(ins) : [];
}

const MOUNT_TYPES = new Set(["bind", "cache", "tmpfs", "secret", "ssh"]);

/**
 * Parses one `RUN --mount=` value as BuildKit does: comma-separated (CSV, so a field may be
 * double-quoted) `key=value` fields, or bare boolean keys (`readonly`). `type` defaults to bind;
 * `src` and `dst`/`destination` are aliases of `source` and `target`.
 */
function parseRunMount(value: string, where: string): RunMount {
    const options: Record<string, string> = {};
    for (const field of splitCsv(value)) {
        if (field === "") continue;
        const eq = field.indexOf("=");
        const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
        options[key] = eq < 0 ? "true" : field.slice(eq + 1);
    }
    const type = (options["type"] ?? "bind").toLowerCase();
    if (!MOUNT_TYPES.has(type)) {
        throw inputError({
            input: `${where} RUN --mount`,
            value: JSON.stringify(value),
            allowed: `type=${[...MOUNT_TYPES].join("|")}`,
            fix: "correct the mount type",
        });
    }
    return {
        type,
        source: options["source"] ?? options["src"],
        from: options["from"],
        target: options["target"] ?? options["dst"] ?? options["destination"],
        options,
    };
}

function splitCsv(s: string): string[] {
    const out: string[] = [];
    let cur = "";
    let quoted = false;
    for (let i = 0; i < s.length; i++) {
        const c = s[i];
        if (quoted) {
            if (c === '"' && s[i + 1] === '"') {
                cur += '"';
                i++;
            } else if (c === '"') quoted = false;
            else cur += c;
        } else if (c === '"') quoted = true;
        else if (c === ",") {
            out.push(cur);
            cur = "";
        } else cur += c;
    }
    out.push(cur);
    return out;
}

function malformed(where: string, kw: string, allowed: string) {
    return inputError({ input: where, value: `a malformed ${kw}`, allowed, fix: `correct the ${kw} instruction` });
}

function mapOf(m: Map<string, string | undefined>): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, v] of m) if (v !== undefined) out.set(k, v);
    return out;
}

function isRemote(src: string): boolean {
    return /^(https?|git):\/\//i.test(src) || /^git@[^:]+:/.test(src);
}

function parseArg(ins: Instruction): { name: string; value?: string }[] {
    return ins.getArguments().map((a) => {
        const v = a.getValue();
        const eq = v.indexOf("=");
        return eq < 0 ? { name: v } : { name: v.slice(0, eq), value: unquote(v.slice(eq + 1)) };
    });
}

function parseEnv(ins: Instruction): [string, string][] {
    const args = ins.getArguments().map((a) => a.getValue());
    if (args.length >= 1 && !args[0].includes("=")) return [[args[0], args.slice(1).join(" ")]]; // legacy ENV name value
    return args.map((v) => {
        const eq = v.indexOf("=");
        return [v.slice(0, eq), unquote(v.slice(eq + 1))];
    });
}

function unquote(s: string): string {
    if (s.length >= 2 && ((s[0] === '"' && s.endsWith('"')) || (s[0] === "'" && s.endsWith("'")))) return s.slice(1, -1);
    return s;
}

/** The words of a COPY/ADD after flags, expanded; undefined for a heredoc. */
function copyWords(ins: Instruction, scope: Map<string, string>): string[] | undefined {
    const split = splitWords(ins.getArgumentsContent() ?? "");
    return split && split.words.map((w) => expand(w, scope, split.shell));
}
