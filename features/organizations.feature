@J3 @both
Feature: Onboard an Organization
  A sovereign-admin onboards an Organization. Catalyst materializes it as a Gitea Org holding a
  shared-blueprints repo, and creates no vcluster until the Organization's first Environment.
  Organization names are slugs that must not collide with reserved words or naming codes.

  @R-ORG-01 @R-ORG-02 @sme-core @corp-core
  Scenario: A sovereign-admin creates an Org with name, contact and plan, and no vcluster is created
    When the sovereign-admin creates the Organization "muscatpharmacy" with contact "ahmed@muscatpharmacy.om" and plan "starter"
    Then the request succeeds with status 201
    And the Organization "muscatpharmacy" is listed by the Catalyst API with contact "ahmed@muscatpharmacy.om" and plan "starter"
    And the Organization "muscatpharmacy" has no Environments
    And no vcluster "muscatpharmacy" runs on host cluster "hz-fsn-rtz-prod"

  @R-ORG-03 @R-NAME-13 @sme-core @corp-core
  Scenario: A new Org gets its Gitea Org with shared-blueprints
    When the sovereign-admin creates the Organization "bankdhofar" with contact "platform@bankdhofar.om" and plan "enterprise"
    Then the Gitea Org "bankdhofar" exists
    And the Gitea repo "bankdhofar/shared-blueprints" exists
    And the Organization CR "bankdhofar" is stored in "system/catalyst-config"

  @R-NAME-05 @negative @sme-core @corp-core
  Scenario Outline: Organization names are validated against the slug rule and the reserved list
    Given the Organization "acme" exists
    When the sovereign-admin creates the Organization "<name>"
    Then the Organization name is <verdict>
    And the Organization "acme" is still listed by the Catalyst API

    Examples: valid slugs
      | name             | verdict  |
      | bankdhofar       | accepted |
      | muscatpharmacy   | accepted |
      | omantel-internal | accepted |

    Examples: invalid or reserved names
      | name                              | verdict  |
      | ab                                | rejected |
      | Acme                              | rejected |
      | 1acme                             | rejected |
      | kube-x                            | rejected |
      | system                            | rejected |
      | prod                              | rejected |
      | fsn                               | rejected |
      | rtz                               | rejected |
      | acme-                             | rejected |
      | a-name-that-is-far-too-long-for-a-slug | rejected |

  @R-ORG-01 @negative @sme-core @corp-core
  Scenario: Creating an Organization that already exists is refused and changes nothing
    Given the Organization "acme" exists
    When the sovereign-admin creates the Organization "acme" with contact "someone@else.example" and plan "starter"
    Then the request is rejected with status 409
    And the Organization "acme" is listed by the Catalyst API with contact "admin@acme.example" and plan "standard"
