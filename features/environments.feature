@J4 @both
Feature: Create an Environment
  An Environment {org}-{env_type} is realized by a vcluster named after its Organization on each
  host cluster of its placement, with Flux in it watching the Environment's branch of every
  Application repo. Creating one never creates a Gitea repo.

  Background:
    Given the Organization "acme" exists

  @R-ENV-01 @R-ENV-03 @R-ENVC-01 @R-NAME-09 @time-travel @sme-core @corp-core
  Scenario: Creating acme-dev makes vcluster "acme" on its host cluster, ready in about 60 seconds
    When the org-admin creates the Environment "acme-dev"
    Then the request succeeds with status 201
    And the Environment "acme-dev" is not ready yet
    When 60 seconds pass
    Then the Environment "acme-dev" is ready with the vcluster "acme" on host cluster "hz-fsn-rtz-dev"
    And the host cluster "hz-fsn-rtz-dev" runs the vcluster "acme" in namespace "acme"

  @R-ENV-03 @sme-core @corp-core
  Scenario: Creating an Environment creates no Gitea repo
    When the org-admin creates the Environment "acme-prod"
    Then the request succeeds with status 201
    And the Gitea Org "acme" holds only the repos "shared-blueprints"

  @R-ENV-04 @R-ENVC-04 @time-travel @corp-core
  Scenario: Several Environments of one Organization get one vcluster each on their own host clusters
    When the org-admin creates the Environment "acme-dev"
    And the org-admin creates the Environment "acme-prod"
    And 60 seconds pass
    Then the Environment "acme-dev" is ready with the vcluster "acme" on host cluster "hz-fsn-rtz-dev"
    And the Environment "acme-prod" is ready with the vcluster "acme" on host cluster "hz-fsn-rtz-prod"
    And no vcluster "acme" runs on host cluster "hz-fsn-rtz-stg"

  @R-NAME-07 @R-NAME-04 @negative @sme-core @corp-core
  Scenario Outline: An Environment that is not {org}-{env_type} is rejected
    When the org-admin creates an Environment of type "<envType>" named "<name>"
    Then the request is rejected with status 422
    And the error names the field "<field>"
    And the Organization "acme" has no Environments

    Examples:
      | envType | name         | field         |
      | dr      | acme-dr      | spec.envType  |
      | stg     | acme-staging | metadata.name |
      | prod    | other-prod   | metadata.name |

  @R-ENV-04 @negative @sme-core @corp-core
  Scenario: A second Environment with the same env_type in the same Organization is rejected
    Given the Environment "acme-dev" exists
    When the org-admin creates the Environment "acme-dev"
    Then the request is rejected with status 409
