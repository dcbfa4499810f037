/**
 * The example app (examples/django-app) as a stack deploys it: its virtualenv (built once by
 * scripts/tools/example-venv.sh), and the environment its pods get — the stack file's settings (the
 * ConfigMap) plus the secret settings a deploy stores in the Secret, made up here per run.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { TestContext } from "node:test";
import { loadStackConfig, type StackConfig } from "../../lib/config";
import { postgresBinDir } from "./postgres";
import { which } from "./tools";

export const PROJECT_DIR = path.resolve(__dirname, "../..");
export const EXAMPLE_DIR = path.join(PROJECT_DIR, "examples", "django-app");
const VENV_SCRIPT = path.join(PROJECT_DIR, "scripts", "tools", "example-venv.sh");

/** The example's virtualenv, built from PyPI on first use (a minute or so), then reused. */
export function exampleVenv(): string {
    const r = spawnSync("bash", [VENV_SCRIPT], { encoding: "utf8", timeout: 15 * 60_000 });
    if (r.status !== 0) throw new Error(`${path.relative(PROJECT_DIR, VENV_SCRIPT)} failed with ${r.status ?? r.signal}: ${r.stderr.slice(-3000)}`);
    const venv = r.stdout.trim().split("\n").pop() ?? "";
    if (!fs.existsSync(path.join(venv, "bin", "python"))) throw new Error(`example-venv.sh printed ${JSON.stringify(venv)}, which has no bin/python`);
    return venv;
}

/** The stack as the program reads it (Pulumi.<stack>.yaml over Pulumi.yaml's defaults). */
export function stackConfig(stack: string): StackConfig {
    return loadStackConfig(PROJECT_DIR, stack);
}

/** What a stack's Secret holds for the example (secretSettings): made up per run, never logged. */
export function secretSettings(o: { databaseUrl: string; brokerUrl: string }): Record<string, string> {
    return {
        DJANGO_SECRET_KEY: randomBytes(48).toString("base64url"),
        DATABASE_URL: o.databaseUrl,
        CELERY_BROKER_URL: o.brokerUrl,
    };
}

/** The ConfigMap's settings of a stack plus the Secret's: the pod's envFrom, in that order (later wins, as in Kubernetes). */
export function podEnvironment(stack: string, secrets: Record<string, string>): Record<string, string> {
    return { ...stackConfig(stack).settings, ...secrets };
}

/** Which of the example's tools (plus `tools`, commands on PATH) this machine lacks. */
export function missingExampleTools(...tools: string[]): string[] {
    const missing = ["python3", "flock", "sha256sum", ...tools].filter((x) => which(x) === undefined);
    if (postgresBinDir() === undefined) missing.push("postgresql server (/usr/lib/postgresql/N/bin)");
    return missing;
}

/**
 * Locally, skips the test when the example's tools are missing; under CI=true, fails it (CI
 * installs them).
 */
export function needExampleTools(t: TestContext, ...tools: string[]): boolean {
    const missing = missingExampleTools(...tools);
    if (missing.length === 0) return true;
    const msg = `missing: ${missing.join(", ")} (install: apt-get install -y postgresql python3-venv redis-server)`;
    if (process.env.CI === "true") throw new Error(`${msg}; CI=true, so this is a failure, not a skip`);
    t.skip(msg);
    return false;
}
