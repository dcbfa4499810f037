/**
 * The kwok Stages of the test cluster (tests/helpers/cluster.ts), as Stage objects kwok watches
 * (`--enable-crds=Stage`), so a test can add a stage while the cluster runs. Modelled on kwok's
 * "fast" stages: a node is Ready at once, a scheduled pod is Running and Ready at once, a Job's pod
 * completes at once, a deleted pod is gone at once (no grace period: nothing runs to stop).
 *
 * Failure injection, two ways; both stages have weight 1, and kwok drops the weight-0 stages
 * (pod-complete) whenever a stage with a positive weight matches, so the outcome is never random:
 * - a pod labelled `FAIL_LABEL: "true"` (in a Job's pod template) fails, its containers
 *   terminated with the exit code in its `FAIL_EXIT_CODE_ANNOTATION` annotation (default 1);
 * - `failJobStage(job)` (cluster.failPodsOfJob) fails every pod of the Job with that name, for
 *   Jobs a test does not write itself (a Pulumi program's migration Job).
 */

export const FAIL_LABEL = "thinlayer.test/kwok-fail";
export const FAIL_EXIT_CODE_ANNOTATION = "thinlayer.test/kwok-exit-code";

type Expr = { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] };

function stage(name: string, kind: "Pod" | "Node", matchExpressions: Expr[], next: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    return {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Stage",
        metadata: { name, labels: { "thinlayer.test/stage": "true" } },
        spec: { resourceRef: { apiGroup: "v1", kind }, selector: { matchExpressions }, next, ...extra },
    };
}

const notDeleted: Expr = { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" };
const running: Expr = { key: ".status.phase", operator: "In", values: ["Running"] };
const nodeReady = '.status.conditions.[] | select( .type == "Ready" ) | .status';

const nodeConditions = `
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}`;

const kwokVersion = '{{ printf "kwok-%s" Version | Quote }}';
const nodeInitialize = `{{ $now := Now }}${nodeConditions}
addresses:
- {address: {{ NodeIP | Quote }}, type: InternalIP}
- {address: {{ NodeName | Quote }}, type: Hostname}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
allocatable: {cpu: "64", memory: 256Gi, pods: "500"}
capacity: {cpu: "64", memory: 256Gi, pods: "500"}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: ${kwokVersion}
  kubeProxyVersion: ${kwokVersion}
  containerRuntimeVersion: ${kwokVersion}
  kernelVersion: ${kwokVersion}
  bootID: ""
  machineID: ""
  osImage: ""
  systemUUID: ""
phase: Running
`;

function podConditions(ready: boolean, reason: string): string {
    const r = ready ? '"True"' : `"False", reason: ${reason}`;
    return `conditions:
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: ${r}, lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: ${r}, lastTransitionTime: {{ $now | Quote }}}`;
}

/** containerStatuses for containers that have exited with `exitCode` (a template expression). */
function terminated(exitCode: string, reason: string, message?: string): string {
    return `containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: ${exitCode}
      reason: ${reason}${message ? `\n      message: ${JSON.stringify(message)}` : ""}
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}`;
}

const podReady = `{{ $now := Now }}
${podConditions(true, "")}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
`;

function podFailed(exitCode: string, why: string): string {
    return `{{ $now := Now }}
{{ $annotations := or .metadata.annotations dict }}
${podConditions(false, "PodFailed")}
${terminated(exitCode, "Error", why)}
phase: Failed
`;
}

/** The stages every test cluster starts with. */
export function baseStages(): object[] {
    return [
        stage("node-initialize", "Node", [{ key: nodeReady, operator: "NotIn", values: ["True"] }], { statusTemplate: nodeInitialize }),
        // kwok renews the node's Lease itself (--node-lease-duration-seconds); this refreshes the
        // conditions' heartbeats now and then, as a kubelet would.
        stage(
            "node-heartbeat",
            "Node",
            [running, { key: nodeReady, operator: "In", values: ["True"] }],
            { statusTemplate: `{{ $now := Now }}${nodeConditions}\n` },
            { delay: { durationMilliseconds: 20000, jitterDurationMilliseconds: 25000 } },
        ),
        stage(
            "pod-ready",
            "Pod",
            [
                notDeleted,
                { key: ".status.phase", operator: "In", values: ["Pending"] },
                { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: "NotIn", values: ["True"] },
            ],
            { statusTemplate: podReady },
        ),
        stage("pod-complete", "Pod", [notDeleted, running, { key: ".metadata.ownerReferences.[].kind", operator: "In", values: ["Job"] }], {
            statusTemplate: `{{ $now := Now }}\n${podConditions(false, "PodCompleted")}\n${terminated("0", "Completed")}\nphase: Succeeded\n`,
        }),
        stage(
            "pod-fail-labelled",
            "Pod",
            [notDeleted, running, { key: `.metadata.labels["${FAIL_LABEL}"]`, operator: "In", values: ["true"] }],
            {
                statusTemplate: podFailed(
                    `{{ or ( index $annotations "${FAIL_EXIT_CODE_ANNOTATION}" ) "1" }}`,
                    `failed by the kwok stage for pods labelled ${FAIL_LABEL}`,
                ),
            },
            { weight: 1 },
        ),
        // A deleted pod (a rollout's old pod, a Job's pod being cleaned up) is removed at once:
        // kwok deletes it with grace period 0.
        stage("pod-delete", "Pod", [{ key: ".metadata.deletionTimestamp", operator: "Exists" }], { delete: true }),
    ];
}

/** A stage that fails every pod of the Job named `job` (any namespace) with `exitCode`. */
export function failJobStage(job: string, exitCode = 1): { name: string; object: object } {
    if (!Number.isInteger(exitCode) || exitCode < 1 || exitCode > 255)
        throw new Error(`failJobStage: exitCode ${exitCode} is not an integer in 1..255 (a failed container exits non-zero)`);
    // Stage names are DNS subdomains; a Job name is a DNS label, so the prefix keeps it valid.
    const name = `thinlayer-fail-job-${job}`;
    return {
        name,
        object: stage(
            name,
            "Pod",
            [notDeleted, running, { key: '.metadata.labels["batch.kubernetes.io/job-name"]', operator: "In", values: [job] }],
            { statusTemplate: podFailed(String(exitCode), `failed by the kwok stage for Job ${job}`) },
            { weight: 1 },
        ),
    };
}

/**
 * The Stage CRD kwok reads with --enable-crds=Stage: ours, without kwok's full schema (kwok decodes
 * the objects itself; the apiserver only needs to store them).
 */
export function stageCrd(): object {
    const open = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
    return {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "stages.kwok.x-k8s.io" },
        spec: {
            group: "kwok.x-k8s.io",
            names: { kind: "Stage", listKind: "StageList", plural: "stages", singular: "stage" },
            scope: "Cluster",
            versions: [
                {
                    name: "v1alpha1",
                    served: true,
                    storage: true,
                    subresources: { status: {} },
                    schema: { openAPIV3Schema: { type: "object", properties: { spec: open, status: open } } },
                },
            ],
        },
    };
}
