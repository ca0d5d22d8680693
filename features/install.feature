@J5 @both
Feature: Install an Application from a Blueprint
  A user installs an Application from the catalog into an Environment. Catalyst flattens the
  Blueprint's dependencies, validates the config against the configSchema, and creates one Gitea
  repo per new Application with develop, staging and main branches holding the initial manifests.

  Background:
    Given the Organization "acme" exists
    And the Environment "acme-dev" exists

  @R-CAT-01 @sme-core @corp-core
  Scenario: The catalog lists the Blueprints a user can install
    When Layla lists the Blueprints of the catalog
    Then the catalog lists "bp-wordpress, bp-postgres, bp-redis, bp-bundle-pharmacy"

  @R-PROV-01 @R-PROV-02 @R-NAME-21 @R-GIT-01 @sme-core @corp-core
  Scenario: Installing bp-wordpress with embedded postgres and no existing postgres creates marketing-site and marketing-site-postgres
    When Layla installs "marketing-site" from "bp-wordpress" in "acme-dev" with config:
      | field         | value                  |
      | domain        | marketing.acme.example |
      | adminEmail    | layla@acme.example     |
      | postgres.mode | embedded               |
    Then the request succeeds with status 201
    And the install plan creates the Applications "marketing-site, marketing-site-postgres"
    And the Gitea repo "acme/marketing-site" has the branches "develop, staging, main"
    And the Gitea repo "acme/marketing-site-postgres" has the branches "develop, staging, main"
    And every branch of "acme/marketing-site" holds the Application manifests
    And the kustomization of "acme/marketing-site" depends on "marketing-site-postgres"

  @R-PROV-02 @R-DEP-05 @R-DEP-02 @negative @sme-core @corp-core
  Scenario: A postgres App outside the dependency's version range cannot be bound
    Given the Application "pg2" is installed from "bp-postgres" version "2.0.0" in "acme-dev"
    When Layla installs "blog" from "bp-wordpress" in "acme-dev" binding "db" to "pg2" with config:
      | field         | value              |
      | domain        | blog.acme.example  |
      | adminEmail    | layla@acme.example |
    Then the request is rejected with status 422
    And the error message mentions "^1.4"
    And the Gitea Org "acme" holds only the repos "shared-blueprints, pg2"

  @R-PROV-02 @R-DEP-05 @sme-core @corp-core
  Scenario: Choosing an existing postgres App creates one repo bound to it
    Given the Application "shared-postgres" is installed from "bp-postgres" version "^1.4" in "acme-dev"
    When Layla installs "blog" from "bp-wordpress" in "acme-dev" binding "db" to "shared-postgres" with config:
      | field         | value            |
      | domain        | blog.acme.example |
      | adminEmail    | layla@acme.example |
      | postgres.mode | embedded         |
    Then the request succeeds with status 201
    And the install plan creates the Applications "blog"
    And the install plan binds "db" to the existing Application "shared-postgres"
    And the kustomization of "acme/blog" depends on "shared-postgres"
    And no Gitea repo "acme/blog-postgres" exists

  @R-DEP-03 @R-PROV-02 @sme-core @corp-core
  Scenario: With postgres.mode=external the bp-postgres dependency is skipped by its when-predicate
    Given the Application "main-db" is installed from "bp-postgres" version "^1.4" in "acme-dev"
    When Layla installs "intranet" from "bp-wordpress" in "acme-dev" with config:
      | field         | value                 |
      | domain        | intranet.acme.example |
      | adminEmail    | layla@acme.example    |
      | postgres.mode | external              |
      | postgres.ref  | main-db               |
    Then the request succeeds with status 201
    And the install plan creates the Applications "intranet"
    And no Gitea repo "acme/intranet-postgres" exists

  @R-CS-04 @R-PROV-03 @negative @sme-core @corp-core
  Scenario: Invalid config (replicas 0, missing adminEmail) is rejected and leaves no repo behind
    When Layla installs "marketing-site" from "bp-wordpress" in "acme-dev" with config:
      | field         | value                  |
      | domain        | marketing.acme.example |
      | replicas      | 0                      |
      | postgres.mode | embedded               |
    Then the request is rejected with status 422
    And the error lists the config fields "/replicas, /adminEmail"
    And no Gitea repo "acme/marketing-site" exists
    And no Gitea repo "acme/marketing-site-postgres" exists

  @R-CAT-04 @R-NAME-21 @R-PROV-05 @R-FLUX-03 @R-CARD-02 @time-travel @sme-core
  Scenario: Installing the Pharmacy Starter Bundle creates five repos, and about 3 minutes later all five are Running
    Given the Organization "muscatpharmacy" exists
    And the Environment "muscatpharmacy-prod" is ready
    When Ahmed installs "pharmacy" from "bp-bundle-pharmacy" in "muscatpharmacy-prod" with config:
      | field       | value                           |
      | domain      | muscatpharmacy.shop.omantel.com |
      | adminEmail  | ahmed@muscatpharmacy.om         |
      | companyName | Muscat Pharmacy                 |
    Then the request succeeds with status 201
    And the install plan creates the Applications "erpnext, woocommerce, pharmacy-mail, shared-postgres, shared-redis"
    And each of those Gitea repos under "muscatpharmacy" has the branches "develop, staging, main"
    And a git clone of "muscatpharmacy/erpnext" on branch "main" holds the Application manifests
    And the kustomization of "muscatpharmacy/erpnext" depends on "shared-postgres"
    And within 3 minutes every Application of "muscatpharmacy-prod" is Running
    And in "muscatpharmacy-prod" every dependent Application was applied only after its dependencies were Ready

  @R-BP-05 @R-FLUX-02 @sme-core @corp-core
  Scenario: A Helm-kind Blueprint is rendered from its chart by Helm with the App's values and reaches Running
    When Layla installs "session-cache" from "bp-valkey" in "acme-dev" with config:
      | field     | value |
      | replicas  | 2     |
      | maxMemory | 256mb |
    Then the request succeeds with status 201
    And within 3 minutes every Application of "acme-dev" is Running
    And the StatefulSet "session-cache" in the "acme-dev" vcluster has 2 replicas
    And the StatefulSet "session-cache" in the "acme-dev" vcluster is labelled "helm.sh/chart" "bp-valkey-8.0.1"

  @R-GIT-01 @R-GIT-02 @R-NAME-14 @both
  Scenario: Each new App repo has develop, staging and main with the required layout and no secret values
    When Layla installs "shop-cache" from "bp-redis" in "acme-dev" with config:
      | field | value |
    Then the request succeeds with status 201
    And a git clone of "acme/shop-cache" on branch "develop" holds the Application manifests
    And a git clone of "acme/shop-cache" on branch "staging" holds the Application manifests
    And the secrets of "acme/shop-cache" are ExternalSecret references under "org/acme/env/"

  @R-NAME-22 @R-APP-02 @negative @sme-core @corp-core
  Scenario: A second install of an existing Application name is refused and changes nothing
    Given the Application "cache" is installed from "bp-redis" in "acme-dev"
    When Layla installs "cache" from "bp-redis" in "acme-dev" with config:
      | field | value |
    Then the request is rejected with status 409
    And the Gitea repo "acme/cache" has the branches "develop, staging, main"

  @R-CAT-03 @negative @sme-core @corp-core
  Scenario Outline: Install requests the catalog cannot satisfy get a clear error
    When Layla installs "<app>" from "<blueprint>" version "<version>" in "acme-dev"
    Then the request is rejected with status <status>
    And the error message mentions "<mention>"
    And the Gitea Org "acme" holds only the repos "shared-blueprints"

    Examples:
      | app      | blueprint         | version | status | mention           |
      | thing    | bp-does-not-exist | ^1      | 404    | bp-does-not-exist |
      | old-db   | bp-postgres       | ^9.0    | 422    | ^9.0              |
      | Bad_Name | bp-redis          | *       | 422    | Bad_Name          |
      | shared-blueprints | bp-redis | *       | 422    | shared-blueprints |
