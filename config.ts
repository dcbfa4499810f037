/**
 * The program's config: every `thinlayer:` key read once from pulumi.Config, validated by the same
 * parser the offline CLI uses (lib/config.ts parseStackConfig), into one typed object. Components
 * never read config. Secret keys are read only as Pulumi secrets and never echoed in an error.
 */
import * as pulumi from "@pulumi/pulumi";
import { convertConfigValue, loadProjectSchema, parsePairs, parseStackConfig, PROJECT, SECRET_KEYS, type ConfigSchema, type StackConfig } from "./lib/config";

export { convertConfigValue };
import { ThinlayerError } from "./lib/errors";

export interface ProgramConfig extends StackConfig {
    /** Secret settings (NAME -> value), a Pulumi secret. */
    secretSettings: pulumi.Output<Record<string, string>>;
    /** kubeconfig contents (a secret), or undefined (not configured) for the ambient kubeconfig. */
    kubeconfig: pulumi.Output<string> | undefined;
}

/** Reads every non-secret key of the schema that is set, converted to its type (pure over `get`). */
export function readRawConfig(schema: ConfigSchema, get: (key: string) => string | undefined): Record<string, unknown> {
    const raw: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(schema)) {
        if (SECRET_KEYS.has(key)) continue;
        const value = get(key);
        if (value !== undefined) raw[key] = convertConfigValue(entry.type, value);
    }
    return raw;
}

/** Parses the secret settings list; messages name the bad items without their values. */
export function parseSecretSettings(raw: string | undefined): Record<string, string> {
    if (raw === undefined || raw === "") return {};
    const items = convertConfigValue("array", raw);
    const problems: string[] = [];
    if (!Array.isArray(items) || !items.every((x) => typeof x === "string")) {
        throw new ThinlayerError(
            `${PROJECT}:secretSettings: got (secret, not a list of strings); expected a list of NAME=VALUE strings. Fix: pulumi config set --secret --path '${PROJECT}:secretSettings[0]' NAME=VALUE`,
        );
    }
    const out = parsePairs("secretSettings", items, /^[A-Za-z_][A-Za-z0-9_]*$/, problems);
    if (problems.length) throw new ThinlayerError(problems.join("\n"));
    return out;
}

/**
 * Rethrows a ThinlayerError (bad input: a missing Dockerfile, a COPY source that matches nothing) as
 * a pulumi.RunError, which Pulumi prints as the message alone, without a stack trace.
 */
export async function asUserError<T>(work: Promise<T>): Promise<T> {
    try {
        return await work;
    } catch (e) {
        throw e instanceof ThinlayerError ? new pulumi.RunError(e.message) : e;
    }
}

/** Loads and validates the stack's config. Throws a pulumi.RunError (message only, no stack trace) on bad input. */
export function loadConfig(projectDir: string): ProgramConfig {
    const config = new pulumi.Config(PROJECT);
    const schema = loadProjectSchema(projectDir);
    let cfg: StackConfig;
    try {
        cfg = parseStackConfig(
            readRawConfig(schema, (k) => config.get(k)),
            schema,
            { projectDir, stack: pulumi.getStack() },
        );
    } catch (e) {
        if (e instanceof ThinlayerError) throw new pulumi.RunError(e.message);
        throw e;
    }
    const secretSettings = pulumi.output(config.getSecret("secretSettings")).apply((raw) => {
        try {
            return parseSecretSettings(raw);
        } catch (e) {
            throw e instanceof ThinlayerError ? new pulumi.RunError(e.message) : e;
        }
    });
    // Whether a key is set is known without its value: an unset kubeconfig stays undefined, so the
    // provider reads the ambient kubeconfig instead of getting an empty secret.
    const kubeconfig = config.getSecret("kubeconfig");
    return { ...cfg, secretSettings: pulumi.secret(secretSettings), kubeconfig };
}
