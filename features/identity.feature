@identity
Feature: Every Catalyst API call is authorized by the caller's token {org, environment, role}
  People log in at their Organization's Keycloak realm (a Keycloak per Org on an SME Sovereign, a realm per
  Org in one Keycloak on a corporate one) and call the Catalyst API with the access token they get. The API
  trusts nothing else: the token's issuer and signature prove who is calling, its lifetime is 15 minutes on
  the Sovereign's clock, and its {org, environment, role} claims decide what the call may touch. A refresh
  token renews access for 30 days after login.

  Background:
    Given the Organization "acme" exists
    And the Organization "bankdhofar" exists
    And Layla is an org-developer of "acme"
    And Omar is an org-viewer of "acme" with access to "acme-dev"
    And Ahmed is an org-admin of "bankdhofar"

  @R-PROJ-04 @R-ID-06 @sme-core @corp-core
  Scenario: An Org cannot read another Org
    Given the Environment "acme-dev" exists
    And the Environment "bankdhofar-dev" exists
    When Ahmed reads the Environment "acme-dev"
    Then the request is rejected with status 403
    And the error message mentions "user 'ahmed' of Organization 'bankdhofar' may not access Organization 'acme'"
    When Ahmed lists the Applications of "acme-dev"
    Then the request is rejected with status 403
    When Ahmed lists the Environments of "acme"
    Then the request is rejected with status 403
    When Ahmed reads the Environment "nobody-dev"
    Then the request is rejected with status 403
    When Ahmed lists the Organizations
    Then he sees only the Organizations "bankdhofar"
    When Ahmed lists the Applications of "bankdhofar-dev"
    Then the request succeeds with status 200
    When Layla lists the Applications of "acme-dev"
    Then the request succeeds with status 200

  @R-PROJ-04 @R-NAME-16 @sme-core @corp-core
  Scenario: An Org's NATS account cannot subscribe to another Org's subjects
    Then Org "bankdhofar"'s NATS credentials cannot subscribe to the subjects of "acme-dev"
    And Org "acme"'s NATS credentials cannot subscribe to the subjects of "bankdhofar-dev"

  @R-ID-06 @R-PROJ-04 @sme-core @corp-core
  Scenario Outline: Roles and Environments in the token decide what a call may do
    When <person> installs "orders-db" from "bp-postgres" in "<environment>"
    Then the request is <outcome>
    And the error message mentions "<reason>"

    Examples:
      | person | environment    | outcome                   | reason                                                    |
      | Omar   | acme-dev       | rejected with status 403  | role(s) org-viewer may not write Environment 'acme-dev'   |
      | Ahmed  | acme-dev       | rejected with status 403  | may not access Organization 'acme'                        |
      | Layla  | bankdhofar-dev | rejected with status 403  | of Organization 'acme' may not access Organization 'bankdhofar' |

  @R-ID-02 @time-travel @sme-core @corp-core
  Scenario: An expired token is refused and a refresh works until 30 days after login
    Given Layla has logged in at the Keycloak realm of "acme"
    When 14 minutes pass
    Then Layla's access token is accepted by the Catalyst API
    When 1 minute passes
    Then Layla's access token is refused with status 401 because "token expired"
    When Layla refreshes her token
    Then Layla's access token is accepted by the Catalyst API
    When 29 days pass
    Then Layla's access token is refused with status 401 because "token expired"
    When Layla refreshes her token
    Then Layla's access token is accepted by the Catalyst API
    When 1 day passes
    Then Layla's refresh is refused because "log in again"
    And Layla's access token is refused with status 401 because "token expired"

  @R-ID-02 @R-PROJ-04 @sme-core @corp-core
  Scenario Outline: A bad token is refused with the reason
    Given Layla has logged in at the Keycloak realm of "acme"
    When Layla reads the Environment "<environment>" with <token>
    Then the request is rejected with status <status>
    And the error message mentions "<reason>"

    Examples:
      | token                                           | environment    | status | reason                                    |
      | no token                                        | acme-dev       | 401    | no Authorization header                   |
      | a token of another Sovereign's Keycloak         | acme-dev       | 401    | unknown issuer                            |
      | a token signed by another issuer's key          | acme-dev       | 401    | signature does not verify                 |
      | a token signed by bankdhofar's realm            | acme-dev       | 401    | does not publish                          |
      | a tampered token                                | acme-dev       | 401    | signature does not verify                 |
      | her refresh token                               | acme-dev       | 401    | not meant for 'catalyst-api'              |
      | her access token                                | bankdhofar-dev | 403    | may not access Organization 'bankdhofar'  |
