@J11 @both
Feature: Secrets from the region's OpenBao, rotated without downtime
  Every App repo names its credentials in an ExternalSecret (a path in OpenBao, never a value). External
  Secrets in each vcluster logs in to the region's OpenBao with its SVID and keeps a Kubernetes Secret in
  step; Reloader rolls the pods when it changes. Ahmed, the security officer, rotates credentials: the
  Secret follows within the refresh interval, the pods roll, and the previous value stays readable for its
  24 hour grace window before OpenBao destroys it.

  @R-SEC-01 @R-SEC-02 @R-SEC-05 @R-ID-01 @time-travel @sme-core @corp-core
  Scenario: Rotate credentials: the Secret follows within the refresh interval, pods roll, the old value works through its grace period
    Given the Organization "acme" exists
    And the Environment "acme-dev" is ready
    And the Application "orders-db" is installed from "bp-postgres" in "acme-dev"
    And within 3 minutes every Application of "acme-dev" is Running
    Then within 1 minute the Secret "orders-db-credentials" of "orders-db" in "acme-dev" holds its credentials from OpenBao
    When Ahmed, the security officer, force-rotates the credentials of "orders-db" in "acme-dev"
    Then the request succeeds with status 200
    And the new credentials are not in the response
    And within 1 hour the Secret "orders-db-credentials" of "orders-db" in "acme-dev" holds the new credentials
    And within 5 minutes every pod of "orders-db" in "acme-dev" was started after the rotation
    And the previous credentials of "orders-db" in "acme-dev" can still be read from OpenBao
    When 24 hours pass
    Then the previous credentials of "orders-db" in "acme-dev" are destroyed in OpenBao
    And the card of "orders-db" in "acme-dev" is Running

  @R-SEC-01 @R-NAME-18 @R-CARD-02 @negative @sme-core @corp-core
  Scenario: An Org cannot read another Org's secrets: OpenBao refuses
    Given the Organization "acme" exists
    And the Environment "acme-dev" is ready
    And the Application "orders-db" is installed from "bp-postgres" in "acme-dev"
    And within 3 minutes every Application of "acme-dev" is Running
    And the Organization "globex" exists
    And the Environment "globex-dev" is ready
    And the Application "shop-db" is installed from "bp-postgres" in "globex-dev"
    When Layla pushes to "develop" of "acme/orders-db" an ExternalSecret "stolen" reading "org/globex/env/dev/shop-db/credentials"
    Then within 2 minutes the ExternalSecret "stolen" of "orders-db" in "acme-dev" is not Ready mentioning "permission denied"
    And no Secret "stolen" exists in the namespace "orders-db" of "acme-dev"
    And within 1 minute the card of "orders-db" in "acme-dev" is Degraded mentioning "stolen"

  @R-SEC-01 @R-CARD-02 @negative @time-travel @sme-core @corp-core
  Scenario: A secret missing in OpenBao makes the ExternalSecret not Ready and the App Degraded, never a crash
    Given the Organization "acme" exists
    And the Environment "acme-dev" is ready
    And the Application "orders-db" is installed from "bp-postgres" in "acme-dev"
    And within 3 minutes every Application of "acme-dev" is Running
    And within 1 minute the Secret "orders-db-credentials" of "orders-db" in "acme-dev" holds its credentials from OpenBao
    When the security officer deletes the credentials of "orders-db" in "acme-dev" from OpenBao
    And 1 hour passes
    Then within 1 minute the card of "orders-db" in "acme-dev" is Degraded mentioning "secret not found in OpenBao"
    And within 1 minute the ExternalSecret "orders-db-credentials" of "orders-db" in "acme-dev" is not Ready mentioning "retrying in"
    And the Secret "orders-db-credentials" of "orders-db" in "acme-dev" still holds the last credentials synced

  @R-SEC-05 @negative @sme-core @corp-core
  Scenario: Force-rotating the credentials of an Application that does not exist is refused
    Given the Organization "acme" exists
    And the Environment "acme-dev" exists
    When Ahmed, the security officer, force-rotates the credentials of "ghost" in "acme-dev"
    Then the request is rejected with status 404
    And the error message mentions "ghost"

  # The session Sovereign has one region (sme); this scenario brings up its own two-region OpenBao (raft) with
  # vclusters in both regions, without the Catalyst API, Gitea and GitOps in front (see steps/secrets_regions.py).
  @R-MR-05 @R-SEC-01 @time-travel @corp-core
  Scenario: One region's OpenBao goes down: the other keeps serving and nothing is lost after the restart
    Given a Sovereign from the "corporate" topology with OpenBao in raft mode
    And "acme" runs "blog" in "acme-dev" in every region
    When the OpenBao of region "hel" goes down
    Then within 2 minutes the ExternalSecret of "blog" in "acme-dev" in region "hel" is not Ready mentioning "unreachable"
    And within 2 minutes the ExternalSecret of "blog" in "acme-dev" in region "fsn" is Ready mentioning "Secret was synced"
    When the OpenBao of region "hel" restarts
    Then the credentials of "blog" in "acme-dev" are still in the OpenBao of region "hel"
    And within 10 minutes the ExternalSecret of "blog" in "acme-dev" in region "hel" is Ready mentioning "Secret was synced"
