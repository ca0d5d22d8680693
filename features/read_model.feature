@read-model @both
Feature: One read model per Environment, folded by the projector from NATS JetStream
  Every state change of an Environment (Flux outcomes, vcluster watches, Gitea webhooks) is an event
  on its subjects ws.<env>.>; the projector folds them into the KV bucket ws-<env>-state, and every
  console surface reads that one model, as a snapshot or over SSE. So two tabs never disagree, a
  crashed projector or a restarted NATS loses nothing, and bad input is parked, never fatal.

  Background:
    Given the Organization "acme" exists
    And the Environment "acme-dev" is ready

  @R-PROJ-01 @R-PROJ-03 @R-PROJ-05 @R-CARD-01 @R-NAME-17 @time-travel @sme-core @corp-core
  Scenario: Every surface sees the same state: two SSE tabs and the snapshot API agree on every card transition of an install
    Given two console tabs follow the events of "acme-dev"
    And the Application "cache" is installed from "bp-redis" in "acme-dev"
    Then within 3 minutes every Application of "acme-dev" is Running
    And both tabs saw every card transition of every Application of "acme-dev" as its history
    And both tabs show the cards the API lists for "acme-dev"
    And the card history of "cache" in "acme-dev" is "Installing, Running"

  @R-PROJ-02 @R-PROJ-06 @time-travel @corp-core @optional-sme
  Scenario: The projector recovers: killed mid-install and restarted, its KV equals a fresh rebuild
    Given the Application "cache" is installed from "bp-redis" in "acme-dev"
    When 10 seconds pass
    And the projector of "acme-dev" is killed and restarted
    Then within 3 minutes every Application of "acme-dev" is Running
    And the read model of "acme-dev" equals a fresh rebuild from its stream

  @R-PROJ-01 @R-PROJ-06 @time-travel @corp-core @optional-sme
  Scenario: NATS restarts mid-install and nothing is lost
    Given the Application "cache" is installed from "bp-redis" in "acme-dev"
    When 10 seconds pass
    And NATS is killed and restarted
    Then within 3 minutes every Application of "acme-dev" is Running
    And the card history of "cache" in "acme-dev" is "Installing, Running"
    And the read model of "acme-dev" equals a fresh rebuild from its stream

  @R-PROJ-01 @R-NAME-16 @negative @time-travel @corp-core @optional-sme
  Scenario: A malformed event and an event for an unknown Environment are parked with their reasons
    Given the Application "cache" is installed from "bp-redis" in "acme-dev"
    When a producer in "acme" publishes "{not json" on "ws.acme-dev.flux.cache"
    And a producer in "acme" publishes a Flux event of Environment "acme-uat" on "ws.acme-dev.flux.cache"
    And a producer in "acme" publishes "{}" on "ws.acme-uat.flux.cache"
    Then the publish is refused because no stream captures it
    And "acme-dev" lists a parked event mentioning "not JSON"
    And "acme-dev" lists a parked event mentioning "event for unknown Environment 'acme-uat'"
    And within 3 minutes every Application of "acme-dev" is Running
    And the read model of "acme-dev" equals a fresh rebuild from its stream
