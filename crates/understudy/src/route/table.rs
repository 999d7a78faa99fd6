//! Routes and deployments, resolved once from the configuration.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{
    Balance, ByokConfig, Config, HedgeConfig, Policy, ProbeConfig, PromptAdaptation, ProviderKind, StreamFailure,
    TargetConfig, TruncateMode, TtftTimeout,
};
use crate::models::{self, ModelLimits};
use crate::provider::{self, Adapter, Endpoint};
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::budget::BudgetConfig;
use crate::resilience::health::{DeploymentHealth, HealthRegistry};
use crate::resilience::latency::Adaptive;
use crate::validate::Rules;

/// Settings resolved with precedence chain entry > route > `defaults` > built-in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub deadline: Duration,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Fixed first-token limit, or the adaptive one's parameters.
    pub ttft: Ttft,
    /// The fixed first-token limit (the adaptive one's `initial` when adaptive).
    pub ttft_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_retry_wait: Duration,
    /// `None` when the breaker is disabled.
    pub breaker: Option<BreakerConfig>,
    /// `None` when the retry budget is disabled.
    pub budget: Option<BudgetConfig>,
    pub disable_for: Duration,
    pub rate_limit_cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ttft {
    Fixed(Duration),
    Auto(Adaptive),
}

impl Limits {
    /// Built-in values, used where no configuration level sets one.
    pub const BUILT_IN: Limits = Limits {
        deadline: Duration::from_secs(180),
        timeout: Duration::from_secs(120),
        connect_timeout: Duration::from_secs(5),
        ttft: Ttft::Fixed(Duration::from_secs(30)),
        ttft_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        max_retries: 1,
        backoff_base: Duration::from_millis(250),
        backoff_max: Duration::from_secs(5),
        max_retry_wait: Duration::from_secs(10),
        breaker: Some(BREAKER),
        budget: Some(BUDGET),
        disable_for: Duration::from_secs(3600),
        rate_limit_cooldown: Duration::from_secs(5),
    };

    pub fn resolve(p: &Policy) -> Limits {
        let b = Limits::BUILT_IN;
        let d = |v: Option<crate::config::HumanDuration>, dflt: Duration| v.map(|h| h.0).unwrap_or(dflt);
        let a = p.adaptive_ttft.unwrap_or_default();
        let adaptive = Adaptive {
            multiplier: a.multiplier.unwrap_or(3.0),
            floor: d(a.floor, Duration::from_millis(500)),
            ceiling: d(a.ceiling, Duration::from_secs(30)),
            min_samples: a.min_samples.unwrap_or(20) as usize,
            initial: d(a.initial, Duration::from_secs(10)),
        };
        let (ttft, ttft_timeout) = match p.ttft_timeout {
            Some(TtftTimeout::Fixed(f)) => (Ttft::Fixed(f.0), f.0),
            Some(TtftTimeout::Auto) => (Ttft::Auto(adaptive), adaptive.initial),
            None => (b.ttft, b.ttft_timeout),
        };
        let bs = p.breaker.unwrap_or_default();
        let breaker = BreakerConfig {
            consecutive_failures: bs.consecutive_failures.unwrap_or(BREAKER.consecutive_failures).max(1),
            failure_rate: bs.failure_rate.unwrap_or(BREAKER.failure_rate),
            window: d(bs.window, BREAKER.window),
            min_requests: bs.min_requests.unwrap_or(BREAKER.min_requests),
            open_for: d(bs.open_for, BREAKER.open_for),
            max_open_for: d(bs.max_open_for, BREAKER.max_open_for),
            half_open_probes: bs.half_open_probes.unwrap_or(BREAKER.half_open_probes).max(1),
        };
        let bb = p.retry_budget.unwrap_or_default();
        let budget = BudgetConfig {
            ratio: bb.ratio.unwrap_or(BUDGET.ratio),
            min_per_sec: bb.min_per_sec.unwrap_or(BUDGET.min_per_sec),
            ttl: d(bb.ttl, BUDGET.ttl),
        };
        Limits {
            deadline: d(p.deadline, b.deadline),
            timeout: d(p.timeout, b.timeout),
            connect_timeout: d(p.connect_timeout, b.connect_timeout),
            ttft,
            ttft_timeout,
            idle_timeout: d(p.idle_timeout, b.idle_timeout),
            max_retries: p.max_retries.unwrap_or(b.max_retries),
            backoff_base: d(p.backoff_base, b.backoff_base),
            backoff_max: d(p.backoff_max, b.backoff_max),
            max_retry_wait: d(p.max_retry_wait, b.max_retry_wait),
            breaker: bs.enabled.unwrap_or(true).then_some(breaker),
            budget: bb.enabled.unwrap_or(true).then_some(budget),
            disable_for: d(p.disable_for, b.disable_for),
            rate_limit_cooldown: d(p.rate_limit_cooldown, b.rate_limit_cooldown),
        }
    }
}

const BREAKER: BreakerConfig = BreakerConfig::DEFAULT;
const BUDGET: BudgetConfig = BudgetConfig::DEFAULT;

/// Request parameters a chain entry overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub stop: Option<Vec<String>>,
    /// Provider-native body fields, merged last.
    pub params: Map<String, Value>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.max_tokens.is_none()
            && self.stop.is_none()
            && self.params.is_empty()
    }
}

/// One provider + model + credentials: the unit that fails, cools down and is balanced.
pub struct Deployment {
    /// `provider/model`, with `#n` appended when a route lists the same pair twice (e.g. two keys).
    pub id: String,
    pub endpoint: Arc<Endpoint>,
    pub adapter: Arc<dyn Adapter>,
    pub model: String,
    pub api_key: crate::config::Secret,
    pub overrides: Overrides,
    pub limits: Limits,
    pub weight: u32,
    pub http: reqwest::Client,
    /// Shared by every route that lists this deployment, and kept across reloads.
    pub health: Arc<DeploymentHealth>,
    pub probe: Option<ProbeConfig>,
    /// Context window and output limit, from the entry or the built-in table.
    pub window: Option<ModelLimits>,
    /// The chain entry's prompt adaptation.
    pub prompt: Option<PromptAdaptation>,
    /// Continues a trailing assistant message (for mid-stream continuation).
    pub prefill: bool,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment").field("id", &self.id).field("model", &self.model).finish_non_exhaustive()
    }
}

/// A named fallback chain. `steps` are tried in order; deployments inside one step are
/// equivalent and balanced by weight.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub steps: Vec<Vec<Arc<Deployment>>>,
    pub limits: Limits,
    pub stream_failure: StreamFailure,
    pub description: Option<String>,
    pub hedge: Option<HedgeConfig>,
    pub balance: Balance,
    pub rules: Arc<Rules>,
    pub truncate: TruncateMode,
    /// The chain for content-policy refusals (`on_content_filtered`).
    pub content_policy: Option<Arc<Route>>,
    /// How callers' own provider keys are used (see `route::byok`).
    pub byok: ByokConfig,
}

impl Route {
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.steps.iter().flatten()
    }
}

/// Every route, plus what is needed to build a one-target route for `provider/model`.
pub struct RouteTable {
    routes: BTreeMap<String, Arc<Route>>,
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    defaults: Policy,
    direct_models: bool,
    clients: Clients,
    health: Arc<HealthRegistry>,
}

impl RouteTable {
    pub fn from_config(c: &Config, health: Arc<HealthRegistry>) -> RouteTable {
        let endpoints: BTreeMap<String, Arc<Endpoint>> =
            c.providers.iter().map(|(n, p)| (n.clone(), Arc::new(Endpoint::from_config(n, p)))).collect();
        let clients = Clients::default();
        let mut routes = BTreeMap::new();
        for (name, rc) in &c.routes {
            let route_policy = c.defaults.overlay(&rc.policy());
            let build = |chain: &[TargetConfig]| {
                Builder { endpoints: &endpoints, clients: &clients, health: &health }.steps(chain, &route_policy)
            };
            let content_policy = (!rc.on_content_filtered.is_empty()).then(|| {
                Arc::new(Route {
                    name: format!("{name}:on_content_filtered"),
                    steps: build(&rc.on_content_filtered),
                    limits: Limits::resolve(&route_policy),
                    stream_failure: rc.stream_failure,
                    description: None,
                    hedge: None,
                    balance: rc.balance,
                    rules: Arc::new(Rules::from_config(&rc.validate)),
                    truncate: rc.truncate,
                    content_policy: None,
                    byok: rc.byok.clone(),
                })
            });
            let mut rules = Rules::from_config(&rc.validate);
            // With a chain of its own for it, a content-filtered answer is a failure to route on.
            rules.content_filter_fails = content_policy.is_some();
            routes.insert(
                name.clone(),
                Arc::new(Route {
                    name: name.clone(),
                    steps: build(&rc.fallback_chain),
                    limits: Limits::resolve(&route_policy),
                    stream_failure: rc.stream_failure,
                    description: rc.description.clone(),
                    hedge: rc.hedge,
                    balance: rc.balance,
                    rules: Arc::new(rules),
                    truncate: rc.truncate,
                    content_policy,
                    byok: rc.byok.clone(),
                }),
            );
        }
        RouteTable {
            routes,
            endpoints,
            defaults: c.defaults.clone(),
            direct_models: c.server.direct_models,
            clients,
            health,
        }
    }

    /// The route a request's `model` names: a configured route, or `provider/model` when direct
    /// addressing is enabled.
    pub fn resolve(&self, model: &str) -> Option<Arc<Route>> {
        if let Some(r) = self.routes.get(model) {
            return Some(r.clone());
        }
        if !self.direct_models {
            return None;
        }
        let (provider, target_model) = model.split_once('/')?;
        let endpoint = self.endpoints.get(provider)?;
        if target_model.is_empty() {
            return None;
        }
        let limits = Limits::resolve(&self.defaults);
        let dep = Arc::new(Deployment {
            id: model.to_string(),
            endpoint: endpoint.clone(),
            adapter: provider::adapter_for(endpoint.kind, target_model),
            model: target_model.to_string(),
            api_key: endpoint.api_key.clone(),
            overrides: Overrides::default(),
            limits,
            weight: 1,
            http: self.clients.get(limits.connect_timeout),
            health: self.health.get(model, limits.breaker, limits.budget),
            probe: None,
            window: window_for(target_model, None, None),
            prompt: None,
            prefill: prefill_default(target_model, endpoint.kind),
        });
        Some(Arc::new(Route {
            name: model.to_string(),
            steps: vec![vec![dep]],
            limits,
            stream_failure: StreamFailure::Error,
            description: None,
            hedge: None,
            balance: Balance::Weighted,
            rules: Arc::new(Rules::default()),
            truncate: TruncateMode::None,
            content_policy: None,
            byok: ByokConfig::default(),
        }))
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }

    pub fn health(&self) -> &Arc<HealthRegistry> {
        &self.health
    }

    /// Every configured deployment once, even when several routes share it.
    pub fn deployments(&self) -> Vec<Arc<Deployment>> {
        let mut seen = std::collections::HashSet::new();
        self.routes
            .values()
            .flat_map(|r| r.deployments().cloned().collect::<Vec<_>>())
            .filter(|d| seen.insert(d.id.clone()))
            .collect()
    }
}

/// One HTTP client (and connection pool) per connect timeout, since reqwest sets it per client.
#[derive(Default)]
struct Clients {
    by_connect: std::sync::Mutex<HashMap<Duration, reqwest::Client>>,
}

impl Clients {
    fn get(&self, connect: Duration) -> reqwest::Client {
        // Never held across an await; a poisoned map is still a valid map.
        let mut map = self.by_connect.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(connect).or_insert_with(|| build_client(connect)).clone()
    }
}

pub fn build_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        // Every hop needs it: without it, added p99 grows by milliseconds (DESIGN section 8).
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn window_for(model: &str, context: Option<u32>, output: Option<u32>) -> Option<ModelLimits> {
    let known = models::limits(model);
    match (context, output, known) {
        (Some(c), o, k) => {
            Some(ModelLimits { context_window: c, max_output: o.or(k.map(|k| k.max_output)).unwrap_or(c) })
        }
        (None, Some(o), Some(k)) => Some(ModelLimits { max_output: o, ..k }),
        (None, _, k) => k,
    }
}

/// Builds deployments from chain entries.
struct Builder<'a> {
    endpoints: &'a BTreeMap<String, Arc<Endpoint>>,
    clients: &'a Clients,
    health: &'a HealthRegistry,
}

impl Builder<'_> {
    /// Chain entries in `priority` order (then file order; entries without a priority last),
    /// grouped into steps: only explicit, equal priorities form a load-balanced group.
    fn steps(&self, chain: &[TargetConfig], route_policy: &Policy) -> Vec<Vec<Arc<Deployment>>> {
        let mut entries: Vec<(usize, &TargetConfig)> = chain.iter().enumerate().collect();
        entries.sort_by_key(|(i, t)| (t.priority.unwrap_or(i64::MAX), *i));
        let mut steps: Vec<Vec<Arc<Deployment>>> = Vec::new();
        let mut last_priority = None;
        let mut seen: HashMap<String, u32> = HashMap::new();
        for (_, t) in entries {
            let Some(endpoint) = self.endpoints.get(&t.provider) else { continue };
            let base_id = format!("{}/{}", t.provider, t.model);
            let n = seen.entry(base_id.clone()).or_insert(0);
            *n += 1;
            let id = if *n == 1 { base_id } else { format!("{base_id}#{n}") };
            let limits = Limits::resolve(&route_policy.overlay(&t.policy()));
            let dep = Arc::new(Deployment {
                health: self.health.get(&id, limits.breaker, limits.budget),
                id,
                endpoint: endpoint.clone(),
                adapter: provider::adapter_for(endpoint.kind, &t.model),
                model: t.model.clone(),
                api_key: t.api_key.clone().unwrap_or_else(|| endpoint.api_key.clone()),
                overrides: Overrides {
                    temperature: t.temperature,
                    top_p: t.top_p,
                    max_tokens: t.max_tokens,
                    stop: t.stop.clone(),
                    params: t.params.clone(),
                },
                limits,
                weight: t.weight.unwrap_or(1),
                http: self.clients.get(limits.connect_timeout),
                probe: t.probe,
                window: window_for(&t.model, t.context_window, t.max_output_tokens),
                prompt: t.prompt.clone(),
                prefill: t.prefill.unwrap_or_else(|| prefill_default(&t.model, endpoint.kind)),
            });
            match (t.priority, last_priority) {
                (Some(p), Some(lp)) if p == lp => {
                    if let Some(last) = steps.last_mut() {
                        last.push(dep)
                    }
                }
                _ => steps.push(vec![dep]),
            }
            last_priority = t.priority;
        }
        steps
    }
}

/// Whether a model continues a trailing assistant message. Claude models before the 4.6
/// generation do; Claude 4.6 and later refuse it, and OpenAI-style and Gemini models answer a
/// trailing assistant turn with a new reply instead of continuing it.
fn prefill_default(model: &str, kind: ProviderKind) -> bool {
    let m = model.rsplit(['/', '.']).next().unwrap_or(model);
    let claude = model.contains("claude");
    let newer =
        ["4-6", "4-7", "-5-", "opus-5", "sonnet-5", "haiku-5"].iter().any(|v| m.contains(v) || model.contains(v));
    claude && !newer && matches!(kind, ProviderKind::Anthropic | ProviderKind::Bedrock | ProviderKind::Vertex)
}
