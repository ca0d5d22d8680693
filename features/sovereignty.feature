@sovereignty
Feature: Achieve true sovereignty: the Sovereign cuts its tethers to the mothership and proves it (ADR-0002)
  A freshly handed-over Sovereign still reaches back to the mothership: Flux pulls github.com/openova-io/openova,
  containerd pulls every image through harbor.openova.io, the HelmRepositories point at ghcr.io and catalyst-api
  falls back upstream. The dormant self-sovereignty cutover moves each of them to the Sovereign's own Gitea and
  Harbor with eight Jobs run strictly in order, and calls itself complete only once egress to github.com,
  ghcr.io and harbor.openova.io has been blocked for 10 minutes while everything stayed green. The same proof
  fails a Sovereign that is still tethered, naming the tether that broke.

  Background:
    Given Ahmed is the sovereign-admin of the Sovereign
    And the Sovereign was just handed over and is still tethered to the mothership

  @R-CUT-01 @R-CUT-04 @R-CUT-05 @R-CUT-06 @R-DOD-01 @R-DOD-02 @R-DOD-03 @sme-core
  Scenario: Achieve true sovereignty
    When Ahmed starts the self-sovereignty cutover
    Then the cutover is accepted and running
    When the cutover reaches the egress-block test
    Then every mothership proxy is disabled
    And the Catalyst API still answers Ahmed
    When the cutover has run to its end
    Then the cutover is complete with all eight Jobs succeeded in order
    And the egress block held for 10 minutes with GitOps reconciles, image pulls and catalyst-api calls green
    And Flux reconciles the platform from the Sovereign's own Gitea
    And no tether the cutover pivots is still attached
    And every mothership proxy is enabled again without toxics

  @R-DOD-02 @R-DOD-03 @R-CUT-07 @sme-core
  Scenario Outline: A tethered Sovereign fails the proof
    When Ahmed starts the cutover as a drill that skips the Job "<job>"
    And the cutover has run to its end
    Then the Job "<job>" is shown as skipped
    And the cutover failed at the Job "<failed at>" for "<reason>"
    And the cutover is not complete
    And every mothership proxy is enabled again without toxics

    # Where the next Job checks the skipped one's effect, the cutover stops there (R-CUT-05); where none
    # does, the egress block catches the tether still attached.
    Examples:
      | job                      | failed at              | reason                                                |
      | registry-pivot           | egress-block-test      | tether 2: containerd registries.yaml -> harbor.openova.io |
      | helmrepo-patches         | egress-block-test      | tether 3: OCI HelmRepositories -> oci://ghcr.io/openova-io |
      | flux-gitrepository-patch | catalyst-api-env-patch | flux-gitrepository-patch's effect is missing          |

  @R-CUT-05 @R-CUT-07 @sme-core
  Scenario: A flaky mothership during cutover
    Given the mothership answers with 5 ms of latency
    And the mothership's "github.com" resets every connection
    When Ahmed starts the self-sovereignty cutover
    And 3 minutes pass
    Then the cutover is still at the Job "gitea-mirror"
    When "github.com" stops resetting connections
    And the cutover has run to its end
    Then the cutover is complete with all eight Jobs succeeded in order
    And the Job "gitea-mirror" retried before it succeeded
    And every mothership proxy is enabled again

  @R-CUT-05 @R-CUT-07 @negative @sme-core
  Scenario: A mothership registry that serves garbage fails the first Job with the reason, and nothing is half-pivoted
    Given the mothership's registry "ghcr.io" serves garbage instead of the blobs asked for
    When Ahmed starts the self-sovereignty cutover
    And the cutover has run to its end
    Then the cutover failed at the Job "gitea-mirror" for "does not match its digest"
    And the cutover is not complete
    And the tether 2 is still attached on every handed-over cluster
    And every mothership proxy is enabled again

  @R-CUT-06 @R-CUT-07 @sme-core
  Scenario: The cutover survives a crash
    When Ahmed starts the self-sovereignty cutover
    And the cutover has finished the Job "harbor-projects"
    And the control plane crashes and restarts
    And the cutover has run to its end
    Then the cutover is complete with all eight Jobs succeeded in order
    And each cutover Job ran exactly once
    And the Jobs finished before the crash were not run again

  @R-CUT-04 @R-ID-06 @sme-core
  Scenario: Only a sovereign-admin starts the cutover, and only once at a time
    Given the Organization "acme" exists
    And Layla is an org-admin of "acme"
    When Layla starts the self-sovereignty cutover
    Then the request is rejected with status 403
    And the error message mentions "only a sovereign-admin may do this"
    When Ahmed starts the cutover as a drill that skips the Job "gitea-mirorr"
    Then the request is rejected with status 422
    And the error names the field "skip"
    When Ahmed starts the self-sovereignty cutover
    Then the cutover is accepted and running
    When Ahmed starts the self-sovereignty cutover
    Then the request is rejected with status 409
    And the error message mentions "a cutover is already running"
    And exactly one cutover is running

  @R-DOD-01 @sme-core
  Scenario: The mothership's Toxiproxy refuses what it does not know
    When a toxic of type "earthquake" is added to the Toxiproxy proxy "mothership-github-com"
    Then Toxiproxy answers 400 with "invalid toxic type"
    When the Toxiproxy proxy "mothership-gitlab-com" is disabled
    Then Toxiproxy answers 404 with "proxy not found"
