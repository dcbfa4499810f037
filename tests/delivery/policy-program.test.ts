/**
 * The program as rendered for uat and prod (index.ts evaluated under the mocks of tests/helpers/mocks.ts, every resource
 * recorded with its inputs) passes the policy pack (no mandatory violation; advisory findings only
 * from advisory policies, printed), run the way the engine runs them — built from source and pinned. And a rendering the pack must reject is rejected: the same
 * recording with one Deployment's image swapped for a tag.
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { policies } from "../../policy/policies";
import { copyExampleApp, evaluateProgram, unwrapSecrets, type EvalResult } from "../helpers/diff";
import { analyzeAll, type HarnessResource, type Violation } from "./policy-harness";

const SECRETS = { secretSettings: ["DJANGO_SECRET_KEY=s3cret-a", "DATABASE_URL=postgres://emr:pw@db/emr"] };

/** Recorded resources as the engine hands them to policies: type, name, input props, urn, parent, dependencies. */
function asPolicyResources(e: EvalResult): HarnessResource[] {
    const urn = (key: string) => `urn:pulumi:test::thinlayer::${key}`;
    return e.resources
        .filter((r) => r.custom)
        .map((r) => ({
            type: r.type,
            name: r.name,
            props: unwrapSecrets(r.inputs) as Record<string, unknown>,
            urn: urn(`${r.type}::${r.name}`),
            parent: r.parent !== undefined ? urn(r.parent) : undefined,
            dependencies: r.dependsOn.map(urn),
        }));
}

const summary = (vs: Violation[]) => vs.map((v) => `${v.policy} [${v.enforcementLevel}]: ${v.message}`).join("\n");

/**
 * Passing = no mandatory violation (what would block `pulumi up`). Advisory findings are allowed
 * only from the advisory policies, and are printed so they stay visible.
 */
function assertPasses(t: TestContext, vs: Violation[], what: string) {
    const mandatory = vs.filter((v) => v.enforcementLevel === "mandatory");
    assert.deepEqual(mandatory, [], `${what}:\n${summary(mandatory)}`);
    const advisoryPolicies = new Set(policies.filter((p) => p.enforcementLevel === "advisory").map((p) => p.name));
    for (const v of vs) assert.ok(advisoryPolicies.has(v.policy), `${what}: ${v.policy} is not an advisory policy`);
    for (const v of vs) t.diagnostic(`${what}: advisory: ${v.policy}: ${v.message}`);
}

describe("the rendered program passes the policy pack", { concurrency: 2 }, () => {
    for (const stack of ["uat", "prod"]) {
        test(`${stack}: built from source, and pinned`, async (t) => {
            const app = copyExampleApp();
            try {
                const built = await evaluateProgram({ stack, config: { appDir: app.dir }, secrets: SECRETS });
                const resources = asPolicyResources(built);
                const types = new Set(resources.map((r) => r.type));
                for (const t of ["kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:core/v1:Service"])
                    assert.ok(types.has(t), `${stack} renders a ${t}`);
                if (stack === "uat")
                    for (const t of ["aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:LifecyclePolicy"]) assert.ok(types.has(t), `uat owns ${t}`);
                assertPasses(t, await analyzeAll(policies, resources), `${stack} built from source`);

                const pinned = await evaluateProgram({ stack, config: { appDir: app.dir, releaseImage: String(built.outputs.appImageRef) }, secrets: SECRETS });
                assertPasses(t, await analyzeAll(policies, asPolicyResources(pinned)), `${stack} pinned`);

                // The same rendering with a tag instead of the digest is rejected.
                const tagged = asPolicyResources(built).map((r) => structuredClone(r));
                const web = tagged.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name === "app-web");
                assert.ok(web, "a web Deployment named app-web");
                (web.props as any).spec.template.spec.containers[0].image = "thinlayer/app:latest"; // eslint-disable-line @typescript-eslint/no-explicit-any
                const bad = await analyzeAll(policies, tagged);
                assert.deepEqual(
                    bad.filter((v) => v.enforcementLevel === "mandatory").map((v) => v.policy),
                    ["workload-image-by-digest"],
                    summary(bad),
                );
            } finally {
                app.cleanup();
            }
        });
    }
});
