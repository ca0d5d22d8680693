@J6 @both
Feature: Configure an Application through Git with the same semantics as the console
  A push to an Application repo bypasses provisioning, yet the webhook still reaches Catalyst and
  the vcluster watching that branch reconciles at once. Only the Environment of that branch
  changes.

  Background:
    Given the Organization "acme" exists
    And the Environment "acme-dev" is ready
    And the Environment "acme-prod" is ready
    And the Application "blog" is installed from "bp-wordpress" in "acme-dev" with config:
      | field         | value              |
      | domain        | blog.acme.example  |
      | adminEmail    | layla@acme.example |
      | postgres.mode | embedded           |
    And within 3 minutes every Application of "acme-dev" is Running
    And within 3 minutes every Application of "acme-prod" is Running

  @R-GIT-03 @R-GIT-04 @R-SURF-03 @R-PROJ-07 @time-travel @corp-core @optional-sme
  Scenario: A direct git push to develop is reconciled in the dev vcluster within 30 seconds and nothing else changes
    When Layla pushes to "develop" of "acme/blog" a commit setting "config.replicas" to 3 in "values.yaml"
    Then within 30 seconds the Deployment "blog" in the "acme-dev" vcluster has 3 replicas
    And the Deployment "blog" in the "acme-prod" vcluster has 2 replicas
    And the branches "staging, main" of "acme/blog" did not move

  @R-CARD-02 @negative @time-travel @corp-core @optional-sme
  Scenario: A broken image makes the App Failed with the reason visible through the API
    When Layla pushes to "develop" of "acme/blog" a commit setting "config.imageTag" to "does-not-exist" in "values.yaml"
    Then within 10 minutes the card of "blog" in "acme-dev" is Failed mentioning "ImagePullBackOff"
    And the card of "blog" in "acme-prod" is Running

  @R-FLUX-02 @negative @time-travel @corp-core @optional-sme
  Scenario: Malformed manifests stall only their own Application; the others keep reconciling
    Given the Application "cache" is installed from "bp-redis" in "acme-dev" with config:
      | field | value |
    And within 3 minutes every Application of "acme-dev" is Running
    When Layla pushes to "develop" of "acme/blog" a "values.yaml" that is not valid YAML
    Then within 2 minutes the card of "blog" in "acme-dev" is Failed mentioning "values.yaml"
    And the card of "cache" in "acme-dev" is Running
    And the card of "blog" in "acme-prod" is Running
