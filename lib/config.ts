/**
 * Stack configuration: one typed object read and validated once.
 *
 * The schema (type, description, default of every key) lives in Pulumi.yaml, so Pulumi, this
 * parser and the README's config reference share one source. `readStackFile` serves the offline
 * CLI (no Pulumi engine); config.ts at the top level feeds the same parser from `pulumi.Config`.
 * No Pulumi imports here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { inputError, ThinlayerError } from "./errors";
import { isEcrRegistry } from "./oci/reference";
import { BUILDER_CHOICES, DIGEST_REF, DNS_LABEL, MIGRATION_ID, PLATFORM, QUANTITY, repositoryNameRule, TAG, workerNameRule, type BuilderChoice } from "./rules";

export const PROJECT = "thinlayer";

export type SchemaType = "string" | "integer" | "boolean" | "array";

export interface SchemaEntry {
    type: SchemaType;
    description: string;
    default: unknown;
}

export type ConfigSchema = Record<string, SchemaEntry>;

/** Keys whose values are secrets: never read by the offline CLI, never echoed in an error. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(["secretSettings", "kubeconfig"]);

export type { BuilderChoice };
const REPOSITORY_MODES = ["create", "existing"] as const;
export type RepositoryMode = (typeof REPOSITORY_MODES)[number];

export interface WorkerConfig {
    name: string;
    command: string;
}

/** Everything a deploy needs, validated; all paths absolute. */
export interface StackConfig {
    stack: string;
    projectDir: string;
    appDir: string;
    baseDockerfile: string;
    appDockerfile: string;
    platform: string;
    buildArgs: Record<string, string>;
    migrationGlobs: string[];
    /** Contract/unknown migrations (`<app>.<name>`) the migration gate lets this stack apply. */
    acknowledgedMigrations: string[];
    settings: Record<string, string>;
    registry: string;
    repositoryMode: RepositoryMode;
    appRepository: string;
    baseRepository: string;
    keepAppImages: number;
    keepBaseImages: number;
    /** Stacks whose deployed images the ECR lifecycle keeps per stack (`<stack>-<tag>` keep tags). */
    lifecycleStacks: string[];
    builder: BuilderChoice;
    namespace: string;
    kubeContext: string;
    webReplicas: number;
    webPort: number;
    healthPath: string;
    workers: WorkerConfig[];
    workerReplicas: number;
    cpuRequest: string;
    memoryRequest: string;
    cpuLimit: string;
    memoryLimit: string;
    revisionHistoryLimit: number;
    migrationBackoffLimit: number;
    migrationDeadlineSeconds: number;
    /** Rollback pin; "" builds from source. */
    releaseImage: string;
    /** The pinned release's migrations hash (64 hex), or "" (no migration Job while pinned). */
    releaseMigrationsHash: string;
}

/** Reads the `config:` schema of Pulumi.yaml. */
export function loadProjectSchema(projectDir: string): ConfigSchema {
    const file = path.join(projectDir, "Pulumi.yaml");
    const doc = readYaml(file) as { config?: Record<string, SchemaEntry> };
    return doc.config ?? {};
}

/** Stacks that have a Pulumi.<stack>.yaml next to Pulumi.yaml. */
export function listStacks(projectDir: string): string[] {
    return fs
        .readdirSync(projectDir)
        .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

/**
 * The `thinlayer:` values of Pulumi.<stack>.yaml, without the namespace. Secure values are
 * dropped: the offline CLI never needs them and must never print them.
 */
export function readStackFile(projectDir: string, stack: string): Record<string, unknown> {
    const candidates = [`Pulumi.${stack}.yaml`, `Pulumi.${stack}.yml`].map((f) => path.join(projectDir, f));
    const file = candidates.find((f) => fs.existsSync(f));
    if (file === undefined) {
        const known = listStacks(projectDir);
        throw inputError({
            input: "--stack",
            value: JSON.stringify(stack),
            allowed: `one of ${known.length ? known.join(", ") : "(no Pulumi.<stack>.yaml found)"}`,
            fix: `pass an existing stack, or create ${path.relative(process.cwd(), candidates[0]) || candidates[0]} (pulumi stack init ${stack})`,
        });
    }
    const doc = (readYaml(file) ?? {}) as { config?: Record<string, unknown> };
    const schema = loadProjectSchema(projectDir);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        if (!k.startsWith(`${PROJECT}:`)) continue;
        const key = k.slice(PROJECT.length + 1);
        if (isSecure(v)) continue;
        // Read the way the Pulumi engine hands values to the program: a string is converted to the
        // key's schema type, so `pulumi config set thinlayer:webReplicas 2` (stored as "2") means 2 here too.
        const type = schema[key]?.type;
        out[key] = typeof v === "string" && type !== undefined ? convertConfigValue(type, v) : v;
    }
    return out;
}

/**
 * Converts one raw config string (Pulumi hands every value to the program as a string; lists and
 * numbers as JSON; `pulumi config set KEY 2` writes the string "2" into the stack file) to the schema type. A value that does not convert is returned as is, so the
 * parser reports it with the key, the value, what is allowed and the fix.
 */
export function convertConfigValue(type: SchemaType, raw: string): unknown {
    if (type === "string") return raw;
    if (type === "integer") return /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    if (type === "boolean") return raw === "true" ? true : raw === "false" ? false : raw;
    try {
        return JSON.parse(raw);
    } catch {
        return raw;
    }
}

/** Convenience for the CLI: schema + stack file -> validated config. */
export function loadStackConfig(projectDir: string, stack: string): StackConfig {
    return parseStackConfig(readStackFile(projectDir, stack), loadProjectSchema(projectDir), { projectDir, stack });
}

/**
 * Validates raw values (from a stack file or pulumi.Config) against the schema and the rules
 * below; fills defaults. Throws one error listing every problem found.
 */
export function parseStackConfig(raw: Record<string, unknown>, schema: ConfigSchema, opts: { projectDir: string; stack: string }): StackConfig {
    const problems: string[] = [];
    for (const key of Object.keys(raw)) {
        if (!(key in schema)) {
            problems.push(
                inputError({
                    input: `${PROJECT}:${key}`,
                    value: "(set)",
                    allowed: `a key declared in Pulumi.yaml (${Object.keys(schema).join(", ")})`,
                    fix: `remove it, or correct its spelling`,
                }).message,
            );
        }
    }
    const v: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(schema)) {
        const value = raw[key] ?? entry.default;
        const err = checkType(key, entry.type, value);
        if (err) problems.push(err);
        else v[key] = value;
    }
    if (problems.length) throw new ThinlayerError(problems.join("\n"));

    const str = (k: string) => v[k] as string;
    const num = (k: string) => v[k] as number;
    const arr = (k: string) => v[k] as string[];
    const check = (ok: boolean, key: string, value: unknown, allowed: string, fix: string) => {
        if (!ok) problems.push(inputError({ input: `${PROJECT}:${key}`, value: JSON.stringify(value), allowed, fix }).message);
    };

    const appDir = path.resolve(opts.projectDir, str("appDir"));
    check(
        fs.existsSync(appDir) && fs.statSync(appDir).isDirectory(),
        "appDir",
        str("appDir"),
        "an existing directory relative to Pulumi.yaml",
        "point appDir at the app's build context",
    );
    check(PLATFORM.test(str("platform")), "platform", str("platform"), PLATFORM.allowed, "set thinlayer:platform to a platform the cluster's nodes run");
    check(
        (BUILDER_CHOICES as readonly string[]).includes(str("builder")),
        "builder",
        str("builder"),
        BUILDER_CHOICES.join(" | "),
        "pick one of the listed builders",
    );
    check(
        (REPOSITORY_MODES as readonly string[]).includes(str("repositoryMode")),
        "repositoryMode",
        str("repositoryMode"),
        REPOSITORY_MODES.join(" | "),
        "use create in the stack that owns the repositories, existing elsewhere",
    );
    const repositoryName = repositoryNameRule(isEcrRegistry(str("registry")));
    for (const key of ["appRepository", "baseRepository"]) {
        check(repositoryName.test(str(key)), key, str(key), repositoryName.allowed, "rename the repository");
    }
    check(
        str("registry") === "" || /^[A-Za-z0-9.-]+(:\d+)?$/.test(str("registry")),
        "registry",
        str("registry"),
        'host[:port] without scheme or path, or "" for ECR',
        "drop https:// and any path",
    );
    check(DNS_LABEL.test(str("namespace")), "namespace", str("namespace"), DNS_LABEL.allowed, "rename the namespace");
    check(str("healthPath").startsWith("/"), "healthPath", str("healthPath"), "an absolute URL path such as /healthz", "start it with /");
    for (const [key, min, max] of [
        ["keepAppImages", 1, 10000],
        ["keepBaseImages", 1, 10000],
        ["webReplicas", 0, 1000],
        ["workerReplicas", 0, 1000],
        ["webPort", 1, 65535],
        ["revisionHistoryLimit", 0, 1000],
        ["migrationBackoffLimit", 0, 100],
        ["migrationDeadlineSeconds", 30, 86400],
    ] as const) {
        check(
            Number.isInteger(num(key)) && num(key) >= min && num(key) <= max,
            key,
            num(key),
            `an integer from ${min} to ${max}`,
            `set ${PROJECT}:${key} within range`,
        );
    }
    for (const key of ["cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"]) {
        check(QUANTITY.test(str(key)), key, str(key), QUANTITY.allowed, "use a Kubernetes resource quantity");
    }
    check(
        str("releaseImage") === "" || DIGEST_REF.test(str("releaseImage")) || TAG.test(str("releaseImage")),
        "releaseImage",
        str("releaseImage"),
        '"" (build from source), repo@sha256:<64 hex>, or a tag of appRepository',
        "use `thinlayer rollback` to write a valid pin, or `thinlayer rollback --clear`",
    );

    check(
        str("releaseMigrationsHash") === "" || /^[a-f0-9]{64}$/.test(str("releaseMigrationsHash")),
        "releaseMigrationsHash",
        str("releaseMigrationsHash"),
        '"" or 64 lowercase hex (a release\'s migrationsHash output)',
        "let `thinlayer rollback` write it, or remove it",
    );
    check(
        str("releaseMigrationsHash") === "" || str("releaseImage") !== "",
        "releaseMigrationsHash",
        str("releaseMigrationsHash"),
        "set only together with thinlayer:releaseImage",
        "remove it (`thinlayer rollback --clear` does)",
    );

    const buildArgs = parsePairs("buildArgs", arr("buildArgs"), /^[A-Za-z_][A-Za-z0-9_]*$/, problems);
    const settings = parsePairs("settings", arr("settings"), /^[A-Za-z_][A-Za-z0-9_]*$/, problems);
    const workerPairs = parsePairs("workers", arr("workers"), /^[^=]+$/, problems);
    const workerName = workerNameRule();
    for (const name of Object.keys(workerPairs)) check(workerName.test(name), "workers", name, workerName.allowed, "rename the worker");
    const lifecycleStacks = arr("lifecycleStacks");
    for (const name of lifecycleStacks) {
        check(
            /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name),
            "lifecycleStacks",
            name,
            "stack names that are DNS labels (lowercase letters, digits, -; at most 63)",
            "list the stacks that deploy, e.g. [uat, prod]",
        );
    }
    check(
        new Set(lifecycleStacks).size === lifecycleStacks.length && lifecycleStacks.length <= 4,
        "lifecycleStacks",
        lifecycleStacks,
        "at most 4 distinct stack names",
        "remove duplicates; list only the stacks that deploy",
    );
    const globs = arr("migrationGlobs");
    check(
        globs.length > 0 && globs.every((g) => g !== "" && !path.isAbsolute(g)),
        "migrationGlobs",
        globs,
        "a non-empty list of globs relative to appDir",
        "e.g. **/migrations/*.py",
    );
    const acknowledged = arr("acknowledgedMigrations");
    for (const id of acknowledged) {
        check(
            MIGRATION_ID.test(id),
            "acknowledgedMigrations",
            id,
            "migration ids <app label>.<migration name>, e.g. records.0002_remove_encounter_notes (as `thinlayer plan` and the gate print them)",
            "write each entry as <app>.<file name without .py>",
        );
    }

    if (problems.length) throw new ThinlayerError(problems.join("\n"));
    return {
        stack: opts.stack,
        projectDir: path.resolve(opts.projectDir),
        appDir,
        baseDockerfile: path.resolve(appDir, str("baseDockerfile")),
        appDockerfile: path.resolve(appDir, str("appDockerfile")),
        platform: str("platform"),
        buildArgs,
        migrationGlobs: globs,
        acknowledgedMigrations: [...new Set(acknowledged)],
        settings,
        registry: str("registry"),
        repositoryMode: str("repositoryMode") as RepositoryMode,
        appRepository: str("appRepository"),
        baseRepository: str("baseRepository"),
        keepAppImages: num("keepAppImages"),
        keepBaseImages: num("keepBaseImages"),
        lifecycleStacks,
        builder: str("builder") as BuilderChoice,
        namespace: str("namespace"),
        kubeContext: str("kubeContext"),
        webReplicas: num("webReplicas"),
        webPort: num("webPort"),
        healthPath: str("healthPath"),
        workers: Object.entries(workerPairs).map(([name, command]) => ({ name, command })),
        workerReplicas: num("workerReplicas"),
        cpuRequest: str("cpuRequest"),
        memoryRequest: str("memoryRequest"),
        cpuLimit: str("cpuLimit"),
        memoryLimit: str("memoryLimit"),
        revisionHistoryLimit: num("revisionHistoryLimit"),
        migrationBackoffLimit: num("migrationBackoffLimit"),
        migrationDeadlineSeconds: num("migrationDeadlineSeconds"),
        releaseImage: str("releaseImage"),
        releaseMigrationsHash: str("releaseMigrationsHash"),
    };
}

/** Parses NAME=VALUE items into a map; duplicate or malformed names are problems. */
export function parsePairs(key: string, items: string[], nameRule: RegExp, problems: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const item of items) {
        const eq = item.indexOf("=");
        const name = eq < 0 ? item : item.slice(0, eq);
        const shown = key === "secretSettings" ? JSON.stringify(name + "=…") : JSON.stringify(item);
        if (eq < 0 || !nameRule.test(name)) {
            problems.push(
                inputError({
                    input: `${PROJECT}:${key}`,
                    value: shown,
                    allowed: `NAME=VALUE with NAME matching ${nameRule}`,
                    fix: "write each item as NAME=VALUE",
                }).message,
            );
        } else if (name in out) {
            problems.push(inputError({ input: `${PROJECT}:${key}`, value: shown, allowed: "each NAME once", fix: `remove the duplicate ${name}` }).message);
        } else {
            out[name] = item.slice(eq + 1);
        }
    }
    return out;
}

function checkType(key: string, type: SchemaType, value: unknown): string | undefined {
    const ok =
        type === "string"
            ? typeof value === "string"
            : type === "integer"
              ? typeof value === "number" && Number.isInteger(value)
              : type === "boolean"
                ? typeof value === "boolean"
                : Array.isArray(value) && value.every((x) => typeof x === "string");
    if (ok) return undefined;
    const shown = SECRET_KEYS.has(key) ? "(secret)" : JSON.stringify(value);
    return inputError({
        input: `${PROJECT}:${key}`,
        value: shown,
        allowed: type === "array" ? "a list of strings" : type === "integer" ? "an integer" : `a ${type}`,
        fix: `set it with pulumi config set${type === "array" ? " --path" : ""} ${PROJECT}:${key} …`,
    }).message;
}

function isSecure(v: unknown): boolean {
    return typeof v === "object" && v !== null && !Array.isArray(v) && "secure" in v;
}

function readYaml(file: string): unknown {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (e) {
        throw inputError({ input: file, value: "(unreadable)", allowed: "a readable YAML file", fix: `check the path: ${(e as Error).message}` });
    }
    try {
        return YAML.parse(text);
    } catch (e) {
        throw inputError({ input: file, value: "(invalid YAML)", allowed: "valid YAML", fix: (e as Error).message });
    }
}
