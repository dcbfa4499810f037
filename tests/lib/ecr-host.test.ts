/**
 * One ECR host check (lib/oci/reference.ts `parseEcrHost`), and every entry point agrees with
 * it: the CLI's credentials, the program's repositories (isEcrRegistry) and its rollback-pin
 * lookup (ecrImageQuery). FIPS and dual-stack hosts are ECR hosts too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEcrHost } from "../../lib/oci/reference";
import { resolveCredentials } from "../../lib/oci/credentials";
import { isEcrRegistry } from "../../components/imageRepository";
import { classifyPin, ecrImageQuery } from "../../components/releasePin";
import { copyExampleApp, evaluateProgram } from "../helpers/diff";

const ACCT = "123456789012";
const ECR_HOSTS: [string, { region: string; fips: boolean; dualStack: boolean }][] = [
    [`${ACCT}.dkr.ecr.eu-west-1.amazonaws.com`, { region: "eu-west-1", fips: false, dualStack: false }],
    [`${ACCT}.dkr.ecr-fips.us-east-1.amazonaws.com`, { region: "us-east-1", fips: true, dualStack: false }],
    [`${ACCT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com`, { region: "us-gov-west-1", fips: true, dualStack: false }],
    [`${ACCT}.dkr.ecr.cn-north-1.amazonaws.com.cn`, { region: "cn-north-1", fips: false, dualStack: false }],
    [`${ACCT}.dkr-ecr.eu-west-1.on.aws`, { region: "eu-west-1", fips: false, dualStack: true }],
    [`${ACCT}.dkr-ecr-fips.us-east-1.on.aws`, { region: "us-east-1", fips: true, dualStack: true }],
];
const OTHER_HOSTS = [
    "127.0.0.1:5000",
    "ghcr.io",
    "registry.example.com",
    `${ACCT}.dkr.ecr.eu-west-1.amazonaws.com.evil.example`,
    `1234.dkr.ecr.eu-west-1.amazonaws.com`,
    `${ACCT}.dkr.ecr-gov.us-east-1.amazonaws.com`,
    `${ACCT}.dkr.ecr.eu-west-1.on.aws`,
    "public.ecr.aws",
];

test("parseEcrHost: account, region and endpoint kind of every ECR host form; nothing else", () => {
    for (const [host, want] of ECR_HOSTS) {
        assert.deepEqual(parseEcrHost(host), { registryId: ACCT, ...want }, host);
        assert.deepEqual(parseEcrHost(host.toUpperCase()), { registryId: ACCT, ...want }, `${host} in capitals`);
    }
    for (const host of OTHER_HOSTS) assert.equal(parseEcrHost(host), undefined, host);
});

test("the program's checks agree: isEcrRegistry and the rollback pin's ECR lookup", () => {
    const digest = `sha256:${"4".repeat(64)}`;
    for (const [host] of ECR_HOSTS) {
        assert.equal(isEcrRegistry(host), true, host);
        assert.deepEqual(
            ecrImageQuery(classifyPin(`${host}/thinlayer/app@${digest}`), `${host}/thinlayer/app`),
            { registryId: ACCT, repositoryName: "thinlayer/app", imageDigest: digest },
            host,
        );
        assert.deepEqual(
            ecrImageQuery(classifyPin("app-0123456789ab"), `${host}/thinlayer/app`),
            { registryId: ACCT, repositoryName: "thinlayer/app", imageTag: "app-0123456789ab" },
            host,
        );
    }
    for (const host of OTHER_HOSTS) {
        assert.equal(isEcrRegistry(host), false, host);
        assert.equal(ecrImageQuery(classifyPin("app-0123456789ab"), `${host}/thinlayer/app`), undefined, host);
    }
});

test("the CLI's credentials agree: an ECR host asks ECR for a token (in the host's region), another host never does", async () => {
    const saved = { ...process.env };
    // An ECR API that refuses connections: the attempt is made and fails fast, offline.
    Object.assign(process.env, {
        AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "x",
        AWS_ENDPOINT_URL_ECR: "http://127.0.0.1:9",
        AWS_MAX_ATTEMPTS: "1",
        AWS_EC2_METADATA_DISABLED: "true",
    });
    try {
        for (const [host, { region }] of ECR_HOSTS) {
            const c = await resolveCredentials(host, { dockerConfig: "/nonexistent/config.json" });
            assert.match(c.source, new RegExp(`^ECR GetAuthorizationToken \\(region ${region},`), host);
        }
        for (const host of OTHER_HOSTS) {
            const c = await resolveCredentials(host, { dockerConfig: "/nonexistent/config.json" });
            assert.match(c.source, /^anonymous/, host);
        }
    } finally {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
    }
});

test("the program on a FIPS ECR registry owns ECR repositories (as the CLI treats the host as ECR)", async () => {
    const app = copyExampleApp();
    try {
        const e = await evaluateProgram({
            stack: "uat",
            config: { appDir: app.dir, registry: `${ACCT}.dkr.ecr-fips.us-east-1.amazonaws.com` },
            secrets: { secretSettings: ["DJANGO_SECRET_KEY=x"] },
        });
        const repos = e.resources
            .filter((r) => r.type === "aws:ecr/repository:Repository")
            .map((r) => r.name)
            .sort();
        assert.deepEqual(repos, ["app-repository", "base-repository"]);
    } finally {
        app.cleanup();
    }
});
