@J9
Feature: Promote an Application through a pull request gated by EnvironmentPolicy
  Promotion is a pull request inside the Application's repo from the lower Environment's branch to
  the higher one's (staging -> main for acme-stg -> acme-prod). The destination's EnvironmentPolicy,
  committed by the sovereign-admin to system/catalyst-config, decides when it may merge: approvals
  from the approver teams, the RE score, a soak of the exact commit in the source Environment and a
  change window. Catalyst merges the pull request itself once every blocking gate passes, and the
  same policy refuses a direct push to the protected branch, whatever the surface.

  Rule: acme promotes acme-stg to acme-prod under the golden acme-prod-policy
    Every scenario starts on a Thursday at 13:00 UTC, an hour before the Thursday change window
    opens (virtual time runs on across scenarios, so each one sets its own week).

    Background:
      Given it is Thursday 13:00 UTC
      And the Organization "acme" exists
      And the Gitea users "layla, omar, sara, yusuf" exist
      And "acme" has the team "team-platform" with "layla, omar"
      And "acme" has the team "team-security" with "sara, yusuf"
      And the Environment "acme-stg" is ready
      And the Environment "acme-prod" is ready
      And the Application "orders-db" is installed from "bp-postgres" version "^1.4" in "acme-stg"
      And within 3 minutes every Application of "acme-prod" is Running
      And the sovereign-admin commits the policy "acme-prod-policy.yaml" to "system/catalyst-config"
      And the Catalyst API lists the policy "acme-prod-policy" as valid
      And Layla has pushed to "staging" of "acme/orders-db" a commit setting "config.instances" to 2 in "values.yaml"
      And within 2 minutes "acme-stg" runs the head of "staging" of "acme/orders-db"

    @R-PROMO-01 @R-PROMO-08 @R-CARD-02 @R-CARD-03 @time-travel @corp-core @optional-sme
    Scenario: "Promote to acme-prod" opens a staging to main pull request and the acme-prod card shows Pending approval
      When Layla promotes "orders-db" from "acme-stg" to "acme-prod"
      Then the request succeeds with status 201
      And the promotion is a pull request from "staging" to "main" in "acme/orders-db" by Layla
      And the card of "orders-db" in "acme-prod" is Pending approval
      And the card of "orders-db" in "acme-stg" is Running
      And the promotion is blocked only by "pr-required, re-score-gate, soak, change-window"

    @R-PROMO-03 @time-travel @corp-core @optional-sme
    Scenario Outline: The pr-required gate needs 2 approvals from team-platform or team-security, not the author's own
      Given Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      When <reviewers> approve the promotion
      Then the "pr-required" gate <verdict> because "<reason>"
      And the promotion is blocked only by "<blockers>"

      Examples:
        | reviewers   | verdict | reason                              | blockers                                        |
        | Omar        | blocks  | 1 of 2 required approvals           | pr-required, re-score-gate, soak, change-window |
        | Layla, Omar | blocks  | layla's own approval does not count | pr-required, re-score-gate, soak, change-window |
        | Omar, Sara  | passes  | 2 of 2 required approvals           | re-score-gate, soak, change-window              |
        | Sara, Yusuf | passes  | 2 of 2 required approvals           | re-score-gate, soak, change-window              |

    @R-PROMO-04 @D-10 @decision @time-travel @corp-core @optional-sme
    Scenario Outline: The blocking RE-score gate needs a score of at least 80
      Given Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      And Omar and Sara approve the promotion
      When the RE Scorecard reports <score> for "acme/orders-db"
      Then the "re-score-gate" gate <verdict> because "<reason>"
      And the promotion is blocked only by "<blockers>"

      Examples:
        | score | verdict | reason                      | blockers                           |
        | 79    | blocks  | RE score 79 < 80 (blocking) | re-score-gate, soak, change-window |
        | 80    | passes  | RE score 80 >= 80           | soak, change-window                |

    @R-PROMO-02 @R-PROMO-04 @D-10 @decision @time-travel @corp-core @optional-sme
    Scenario: An advisory RE-score gate warns but does not block the merge
      Given the sovereign-admin commits the policy "acme-prod-policy.yaml" to "system/catalyst-config" with:
        """
        apiVersion: catalyst.openova.io/v1alpha1
        kind: EnvironmentPolicy
        metadata:
          name: acme-prod-policy
        spec:
          appliesTo:
            environments: [acme-prod]
          rules:
            - kind: pr-required
              approvers: [team-platform, team-security]
              minApprovals: 2
            - kind: re-score-gate
              minScore: 80
              severity: warning
        """
      And the RE Scorecard reports 79 for "acme/orders-db"
      And Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      When Omar and Sara approve the promotion
      Then the promotion is merged
      And the "re-score-gate" gate warns because "RE score 79 < 80 (warning: recorded, does not block)"

    @R-PROMO-05 @D-11 @decision @time-travel @corp-core @optional-sme
    Scenario Outline: The exact candidate commit must soak 72h in acme-stg
      Given Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      And the RE Scorecard reports 80 for "acme/orders-db"
      And Omar and Sara approve the promotion
      When the candidate has soaked <soaked> in "acme-stg"
      Then the "soak" gate <verdict> because "soaked <soaked> of 72h in acme-stg"
      And the promotion is blocked only by "<blockers>"

      Examples:
        | soaked | verdict | blockers            |
        | 71h59m | blocks  | soak, change-window |
        | 72h    | passes  | change-window       |

    @R-PROMO-02 @R-PROMO-06 @D-12 @decision @time-travel @corp-core @optional-sme
    Scenario: When every other gate has passed, the pull request auto-merges as the window opens and acme-prod reconciles the promoted revision
      Given Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      And the RE Scorecard reports 80 for "acme/orders-db"
      And Omar and Sara approve the promotion
      When it is Tuesday 13:59 UTC
      Then the "change-window" gate blocks because "outside change window: next opens Tue"
      And the promotion is blocked only by "change-window"
      When it is Tuesday 14:00 UTC
      Then the promotion is merged
      And the "change-window" gate passes because "inside change window Tue 14:00–16:00 UTC"
      And the Gitea pull request of the promotion was merged by the control plane with "Promoted-by: layla"
      And within 5 minutes the "acme-prod" vcluster runs the merge commit of the promotion
      And the StatefulSet "orders-db" in the "acme-prod" vcluster has 2 replicas
      And within 5 minutes the card of "orders-db" in "acme-prod" is Running mentioning "main@sha1"

    @R-PROMO-06 @D-12 @decision @time-travel @corp-core @optional-sme
    Scenario Outline: The last approval merges only inside the Thursday 14:00-16:00 UTC change window
      Given the sovereign-admin commits the policy "acme-prod-policy.yaml" to "system/catalyst-config" with:
        """
        apiVersion: catalyst.openova.io/v1alpha1
        kind: EnvironmentPolicy
        metadata:
          name: acme-prod-policy
        spec:
          appliesTo:
            environments: [acme-prod]
          rules:
            - kind: pr-required
              approvers: [team-platform, team-security]
              minApprovals: 2
            - kind: change-window
              cron: "0 14 * * 2,4"
              duration: 2h
        """
      And Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      And Omar approves the promotion
      When it is <when> UTC
      And Sara approves the promotion
      Then the "change-window" gate <verdict> because "<reason>"
      And the promotion is <outcome>

      Examples:
        | when           | verdict | reason                                   | outcome |
        | Thursday 13:59 | blocks  | outside change window: next opens Thu    | open    |
        | Thursday 14:00 | passes  | inside change window Thu 14:00–16:00 UTC | merged  |
        | Thursday 15:59 | passes  | inside change window Thu 14:00–16:00 UTC | merged  |
        | Thursday 16:00 | blocks  | outside change window: next opens Tue    | open    |

    @R-PROMO-03 @time-travel @corp-core @optional-sme
    Scenario: A change request from an approver blocks the merge until it is dismissed
      Given the sovereign-admin commits the policy "acme-prod-policy.yaml" to "system/catalyst-config" with:
        """
        apiVersion: catalyst.openova.io/v1alpha1
        kind: EnvironmentPolicy
        metadata:
          name: acme-prod-policy
        spec:
          appliesTo:
            environments: [acme-prod]
          rules:
            - kind: pr-required
              approvers: [team-platform, team-security]
              minApprovals: 2
        """
      And Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      When Sara requests changes on the promotion
      And Omar and Yusuf approve the promotion
      Then the "pr-required" gate blocks because "changes requested by sara"
      And the promotion is blocked only by "pr-required"
      When the org-admin dismisses Sara's review
      Then within 5 minutes the promotion is merged

    @R-SURF-03 @R-PROMO-07 @R-PROMO-08 @time-travel @corp-core @optional-sme
    Scenario: A pull request opened in Gitea between the Environment branches is gated by the same policy
      When Layla opens a pull request in Gitea from "staging" to "main" of "acme/orders-db"
      Then the Catalyst API shows the promotion opened via Gitea by Layla
      And the card of "orders-db" in "acme-prod" is Pending approval
      And the promotion is blocked only by "pr-required, re-score-gate, soak, change-window"

    @R-PROMO-07 @R-SURF-03 @R-EP-02 @negative @time-travel @corp-core @optional-sme
    Scenario: A direct push to main that skips the pull request is refused by the same policy
      Then within 1 minute the branch "main" of "acme/orders-db" is protected: no pushes, 2 approvals from "team-platform, team-security"
      When Layla pushes directly to "main" of "acme/orders-db" a commit setting "config.instances" to 3 in "values.yaml"
      Then the push is refused with "Not allowed to push to protected branch main"
      And the branches "main" of "acme/orders-db" did not move
      And the StatefulSet "orders-db" in the "acme-prod" vcluster has 1 replicas

    @R-EP-01 @R-EP-02 @negative @time-travel @corp-core @optional-sme
    Scenario Outline: A broken policy refuses the promotion, with its problem visible through the API
      Given the sovereign-admin commits the policy "acme-prod-policy.yaml" to "system/catalyst-config" with:
        """
        apiVersion: catalyst.openova.io/v1alpha1
        kind: EnvironmentPolicy
        metadata:
          name: acme-prod-policy
        spec:
          appliesTo:
            environments: [acme-prod]
          rules:
            - kind: pr-required
              approvers: [team-platform, team-security]
              minApprovals: <approvals>
            - kind: soak
              sourceEnvironment: <source>
              duration: <soak>
            - kind: change-window
              cron: "<cron>"
              duration: 2h
        """
      When Layla promotes "orders-db" from "acme-stg" to "acme-prod"
      Then the request is rejected with status 409
      And the error message mentions "<problem>"
      And the Catalyst API lists the policy "acme-prod-policy" as invalid mentioning "<problem>"
      And no pull request is open in "acme/orders-db"

      Examples:
        | approvals | source   | soak | cron         | problem                                          |
        | 2         | acme-stg | 72h  | 0 25 * * 2   | is not a valid 5-field cron expression           |
        | 5         | acme-stg | 72h  | 0 14 * * 2,4 | exceeds the approver pool                        |
        | 2         | acme-uat | 72h  | 0 14 * * 2,4 | soak source Environment 'acme-uat' does not exist |
        | 2         | acme-stg | -72h | 0 14 * * 2,4 | must not be negative                             |

    @R-EP-02 @negative @time-travel @corp-core @optional-sme
    Scenario: A policy that breaks while a promotion is open blocks it instead of waving it through
      Given Layla has promoted "orders-db" from "acme-stg" to "acme-prod"
      And Omar and Sara approve the promotion
      When the sovereign-admin commits the policy "acme-prod-policy.yaml" to "system/catalyst-config" with:
        """
        apiVersion: catalyst.openova.io/v1alpha1
        kind: EnvironmentPolicy
        metadata:
          name: acme-prod-policy
        spec:
          appliesTo:
            environments: [acme-prod]
          rules:
            - kind: pr-required
              approvers: [team-platform, team-audit]
              minApprovals: 2
        """
      Then the "policy-valid" gate blocks because "approver team 'team-audit' does not exist"
      And the promotion is open

  Rule: an SME pharmacy promotes with one owner's approval

    Background:
      Given it is Monday 09:00 UTC
      And the Organization "muscatpharmacy" exists
      And the Gitea users "ahmed, fatma" exist
      And "muscatpharmacy" has the team "owners" with "fatma"
      And the Environment "muscatpharmacy-stg" is ready
      And the Environment "muscatpharmacy-prod" is ready
      And the Application "shop-db" is installed from "bp-postgres" version "^1.4" in "muscatpharmacy-stg"
      And within 3 minutes every Application of "muscatpharmacy-prod" is Running
      And the sovereign-admin commits the policy "muscatpharmacy-prod-policy.yaml" to "system/catalyst-config"
      And the Catalyst API lists the policy "muscatpharmacy-prod-policy" as valid
      And Ahmed has pushed to "staging" of "muscatpharmacy/shop-db" a commit setting "config.instances" to 2 in "values.yaml"
      And within 2 minutes "muscatpharmacy-stg" runs the head of "staging" of "muscatpharmacy/shop-db"

    @R-EP-03 @R-PROMO-02 @R-PROMO-03 @time-travel @optional-sme
    Scenario: One approval from the owners merges the promotion after a day of soak (minApprovals 1)
      Given Ahmed has promoted "shop-db" from "muscatpharmacy-stg" to "muscatpharmacy-prod"
      And the candidate has soaked 24h in "muscatpharmacy-stg"
      When Fatma approves the promotion
      Then the promotion is merged
      And the "re-score-gate" gate warns because "no RE score recorded"
      And within 5 minutes the StatefulSet "shop-db" in the "muscatpharmacy-prod" vcluster has 2 replicas
