//! The response-cache stages of an operation: the plan (whether its answer
//! may be cached, and for how long), the lookup with its single flight (one
//! request computes a missed answer while identical ones wait), and storing
//! the computed answer for the next caller and the waiting ones.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response as GqlResponse};

use super::answer::{Answer, DATA, DataText};
use crate::auth::caller::Caller;
use crate::graphql::splice;
use crate::http::responses::{self, CacheStatus, Freshness};
use crate::response_cache::hints::{Hints, Plan};
use crate::response_cache::{self, Flight, Leader, Lookup, ResponseCache, Ticket};

/// Whether the answer may be cached: only with the cache on and when the
/// hints of every selected field allow it; never longer than the cache's cap.
pub(super) fn plan(
    responses: &ResponseCache,
    hints: &Hints,
    document: &ExecutableDocument,
    request: &Request,
) -> Option<Plan> {
    if !responses.enabled() {
        return None;
    }
    let mut plan = hints.plan(
        document,
        request.operation_name.as_deref(),
        &request.variables,
    )?;
    plan.max_age = plan.max_age.min(responses.max_age_cap());
    Some(plan)
}

/// How long HTTP caches may keep an answer of this plan.
pub(super) fn freshness(plan: &Plan) -> Freshness {
    Freshness {
        max_age: plan.max_age,
        private: plan.private,
    }
}

/// What the response cache said about one operation.
pub(super) enum Consulted {
    /// Its answer: stored and current, or just computed by the identical
    /// request this one waited for.
    Hit(Hit),
    /// This request computes its answer.
    Compute(Keep),
}

/// An answer known without executing.
pub(super) struct Hit {
    data: Arc<str>,
    digest: String,
    freshness: Freshness,
}

impl Hit {
    pub(super) fn answer(self, show_status: bool) -> Answer {
        Answer::cached(self.data, self.freshness, &self.digest, show_status)
    }
}

/// How a computed answer reaches the cache: the status it reports, the
/// ticket it is stored under (none when it may not be), and the flight it
/// leads (when identical requests wait for it).
pub(super) struct Keep {
    pub(super) status: CacheStatus,
    ticket: Option<Ticket>,
    lead: Option<Leader>,
}

impl Keep {
    /// Not looked up: not cacheable, or the cache is unavailable.
    fn bypass() -> Self {
        Self {
            status: CacheStatus::Bypass,
            ticket: None,
            lead: None,
        }
    }

    /// Stores an answer that may be stored (see `storable`) under the
    /// ticket and hands it to the requests waiting for it. Its `data` is
    /// then text (and `response.data` null): the reply does not write it
    /// again. Waiting requests compute their own when this one stores none.
    pub(super) async fn store(
        self,
        responses: &ResponseCache,
        response: &mut GqlResponse,
    ) -> Option<DataText> {
        let ticket = self.ticket.filter(|_| storable(response))?;
        let text = splice::to_string_after(DATA, &response.data);
        let data = &text[DATA.len()..];
        responses.store(ticket, data).await;
        response.data = async_graphql::Value::Null;
        if let Some(leader) = &self.lead {
            leader.land(Arc::from(data));
        }
        Some(DataText::Started(text))
    }
}

/// Whether a computed answer may be stored: only one without errors.
fn storable(response: &GqlResponse) -> bool {
    response.errors.is_empty()
}

/// Looks the answer up under its key (unless `fresh`: then a ticket to
/// store a fresh one, status `BYPASS`). On a miss, this request leads the
/// flight of its key, or waits up to `wait` for the request that leads it.
pub(super) async fn consult(
    responses: &ResponseCache,
    request: &Request,
    caller: &Caller,
    plan: Option<&Plan>,
    fresh: bool,
    wait: Duration,
) -> Consulted {
    let Some(plan) = plan else {
        return Consulted::Compute(Keep::bypass());
    };
    let digest = responses::digest(
        &request.query,
        request.operation_name.as_deref(),
        &request.variables,
        caller,
        plan,
    );
    let ttl = Duration::from_secs(u64::from(plan.max_age));
    let lookup = if fresh {
        responses.renewal(&digest, &plan.dependencies, ttl).await
    } else {
        responses.lookup(&digest, &plan.dependencies, ttl).await
    };
    let Lookup::Ready { found, ticket } = lookup else {
        return Consulted::Compute(Keep::bypass());
    };
    let hit = |data, digest| {
        Consulted::Hit(Hit {
            data,
            digest,
            freshness: freshness(plan),
        })
    };
    if fresh {
        return Consulted::Compute(Keep {
            status: CacheStatus::Bypass,
            ticket: Some(ticket),
            lead: None,
        });
    }
    if let Some(data) = found {
        return hit(data, digest);
    }
    let lead = match responses.flight(&digest) {
        Flight::Lead(leader) => Some(leader),
        Flight::Follow(answer) => match response_cache::follow(answer, wait).await {
            // Computed once, by the request this one waited for.
            Some(data) => return hit(data, digest),
            None => None,
        },
    };
    Consulted::Compute(Keep {
        status: CacheStatus::Miss,
        ticket: Some(ticket),
        lead,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::config::ResponseCacheSettings;
    use crate::graphql::Query;
    use async_graphql::parser::parse_query;
    use async_graphql::{ErrorExtensionValues, ServerError};

    const ASSETS: &str = "{ assets(first: 10) { totalCount } }";

    fn cache(enabled: bool, cap: u32) -> ResponseCache {
        let settings = ResponseCacheSettings {
            enabled,
            max_age_cap_secs: cap,
            max_entry_bytes: 1024,
            local_entries: 4,
        };
        ResponseCache::new(Arc::new(Cache::local_only()), settings, "t")
    }

    fn assets_plan() -> Plan {
        Plan {
            max_age: 30,
            private: false,
            dependencies: vec![response_cache::entity("Asset")],
        }
    }

    async fn consulted(cache: &ResponseCache, fresh: bool) -> Consulted {
        let request = Request::new(ASSETS);
        let plan = assets_plan();
        let wait = Duration::from_millis(10);
        consult(
            cache,
            &request,
            &Caller::Anonymous,
            Some(&plan),
            fresh,
            wait,
        )
        .await
    }

    fn answered(data: &str) -> GqlResponse {
        GqlResponse::new(
            async_graphql::Value::from_json(serde_json::json!({ "n": data })).expect("json"),
        )
    }

    fn failed() -> GqlResponse {
        let mut error = ServerError::new("no", None);
        error.extensions = Some(ErrorExtensionValues::default());
        GqlResponse::from_errors(vec![error])
    }

    #[test]
    fn an_answer_is_planned_only_with_the_cache_on_and_never_past_its_cap() {
        let hints = Hints::of::<Query>();
        let document = parse_query(ASSETS).expect("parses");
        let request = Request::new(ASSETS);
        assert_eq!(plan(&cache(false, 60), &hints, &document, &request), None);
        let capped = plan(&cache(true, 1), &hints, &document, &request).expect("cacheable");
        assert_eq!(capped.max_age, 1);
        assert_eq!(
            freshness(&capped),
            Freshness {
                max_age: 1,
                private: false
            }
        );
        let me = parse_query("{ me { id } }").expect("parses");
        assert_eq!(plan(&cache(true, 60), &hints, &me, &request), None);
    }

    #[tokio::test]
    async fn an_uncacheable_operation_bypasses_the_cache() {
        let request = Request::new(ASSETS);
        let wait = Duration::from_millis(10);
        let Consulted::Compute(keep) = consult(
            &cache(true, 60),
            &request,
            &Caller::Anonymous,
            None,
            false,
            wait,
        )
        .await
        else {
            panic!("nothing to look up");
        };
        assert_eq!(keep.status, CacheStatus::Bypass);
        assert!(keep.ticket.is_none() && keep.lead.is_none());
    }

    #[tokio::test]
    async fn a_miss_leads_its_flight_and_its_stored_answer_is_the_next_hit() {
        let cache = cache(true, 60);
        let Consulted::Compute(keep) = consulted(&cache, false).await else {
            panic!("nothing stored yet");
        };
        assert_eq!(keep.status, CacheStatus::Miss);
        assert!(keep.lead.is_some());
        let mut response = answered("one");
        let Some(DataText::Started(text)) = keep.store(&cache, &mut response).await else {
            panic!("an answer without errors is stored");
        };
        assert_eq!(text, "{\"data\":{\"n\":\"one\"}");
        assert_eq!(response.data, async_graphql::Value::Null);
        let Consulted::Hit(hit) = consulted(&cache, false).await else {
            panic!("stored");
        };
        let answer = hit.answer(false);
        assert!(
            matches!(answer.data_json, Some(DataText::Shared(ref d)) if &**d == "{\"n\":\"one\"}")
        );
        assert_eq!(
            answer.freshness,
            Some(Freshness {
                max_age: 30,
                private: false
            })
        );
    }

    #[tokio::test]
    async fn an_answer_with_errors_is_not_stored() {
        let cache = cache(true, 60);
        let Consulted::Compute(keep) = consulted(&cache, false).await else {
            panic!("nothing stored yet");
        };
        let mut response = failed();
        assert!(keep.store(&cache, &mut response).await.is_none());
        assert!(matches!(
            consulted(&cache, false).await,
            Consulted::Compute(_)
        ));
    }

    #[tokio::test]
    async fn a_fresh_request_skips_the_stored_answer_but_renews_it() {
        let cache = cache(true, 60);
        if let Consulted::Compute(keep) = consulted(&cache, false).await {
            keep.store(&cache, &mut answered("old")).await;
        }
        let Consulted::Compute(keep) = consulted(&cache, true).await else {
            panic!("a fresh request computes");
        };
        assert_eq!(keep.status, CacheStatus::Bypass);
        assert!(keep.lead.is_none());
        keep.store(&cache, &mut answered("new")).await;
        let Consulted::Hit(hit) = consulted(&cache, false).await else {
            panic!("renewed");
        };
        assert_eq!(&*hit.data, "{\"n\":\"new\"}");
    }

    #[tokio::test]
    async fn an_identical_request_gets_the_leaders_answer_without_computing() {
        let cache = cache(true, 60);
        let Consulted::Compute(leader) = consulted(&cache, false).await else {
            panic!("the first request leads");
        };
        // The follower asks first (it finds nothing and waits), then the leader stores.
        let (follower, _) = tokio::join!(biased; consulted(&cache, false), async {
            leader.store(&cache, &mut answered("once")).await
        });
        let Consulted::Hit(hit) = follower else {
            panic!("the follower waited for the leader");
        };
        assert_eq!(&*hit.data, "{\"n\":\"once\"}");
    }

    #[tokio::test]
    async fn a_follower_computes_its_own_when_the_leader_lands_nothing() {
        let cache = cache(true, 60);
        let Consulted::Compute(leader) = consulted(&cache, false).await else {
            panic!("the first request leads");
        };
        let Consulted::Compute(follower) = consulted(&cache, false).await else {
            panic!("the leader landed nothing within the wait");
        };
        assert_eq!(follower.status, CacheStatus::Miss);
        assert!(follower.lead.is_none() && follower.ticket.is_some());
        drop(leader);
    }
}
