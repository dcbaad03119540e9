//! The validating lookup: hickory's `DnssecDnsHandle` over our [`Guard`] over hickory's name
//! server pool. Transport only: it returns typed outcomes and decides nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer, RetryDnsHandle};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, DNSKEY};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::{DnsRequestOptions, DnsResponse, Message, Query};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};

use crate::address::{combine, AddressAnswer};
use crate::answer::{Absence, Answer, Denial, Failure, LookupError, Unsigned};
use crate::classify::{classify, classify_rrset, type_name, Verdict};
use crate::config::{Upstream, ValidatorConfig};
use crate::guard::{Budget, Guard, GuardStats, BUDGET, REJECTED};
use crate::ipseckey::RECORD_TYPE;
use crate::proofs::{walk, Covered, Proofs};
use crate::target::LookupTarget;
use crate::wildcard::proves_nsec_wildcard_answer;

type Transport = Guard<RetryDnsHandle<NameServerPool<TokioRuntimeProvider>>>;
pub(crate) type Checked = DnssecDnsHandle<Transport>;

/// hickory's validation cache entries (RRset proofs), bounded.
const VALIDATION_CACHE: usize = 4096;
/// EDNS payload size (DNS flag day 2020).
const EDNS_PAYLOAD: u16 = 1232;

/// Looks up IPSECKEY records and validates them from the trust anchors.
pub struct Validator {
    transport: Transport,
    checked: tokio::sync::OnceCell<Checked>,
    config: ValidatorConfig,
    stats: Arc<GuardStats>,
    proofs: Arc<Proofs>,
    anchor_owners: Vec<Name>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What one lookup cost, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LookupCost {
    /// Upstream queries sent, chain of trust included.
    pub queries: usize,
}

impl Validator {
    /// Builds the validator; no query is sent yet. Must be called inside a tokio runtime.
    pub fn new(config: ValidatorConfig) -> Result<Self, LookupError> {
        let (servers, mut opts) = name_servers(&config.upstream)?;
        opts.timeout = config.query_timeout;
        opts.attempts = config.attempts;
        opts.edns0 = true;
        opts.edns_payload_len = EDNS_PAYLOAD;
        opts.try_tcp_on_error = true;
        opts.recursion_desired = true;
        let tls = TlsConfig {
            config: tls_config(&config.upstream)?,
        };
        let cx = Arc::new(PoolContext::new(opts, tls));
        let pool = NameServerPool::from_config(servers, cx, TokioRuntimeProvider::default());
        let stats = Arc::new(GuardStats::default());
        let retry = RetryDnsHandle::new(pool, config.attempts);
        let mut anchor_owners: Vec<Name> =
            config.anchors.keys.iter().map(|k| k.0.clone()).collect();
        anchor_owners.extend(config.anchors.ds_owners());
        let transport = Guard::new(retry, config.limits, stats.clone(), &anchor_owners);
        Ok(Self {
            transport,
            checked: tokio::sync::OnceCell::new(),
            config,
            stats,
            proofs: Arc::default(),
            anchor_owners,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// Counters of queries and rejected responses.
    pub fn stats(&self) -> &GuardStats {
        &self.stats
    }

    /// Looks up the target's IPSECKEY RRset within the lookup deadline.
    pub async fn lookup(&self, target: &LookupTarget) -> Result<Answer, LookupError> {
        self.lookup_with_cost(target).await.0
    }

    /// Like [`Self::lookup`], also telling what the lookup cost.
    pub async fn lookup_with_cost(
        &self,
        target: &LookupTarget,
    ) -> (Result<Answer, LookupError>, LookupCost) {
        let qname = target.query_name();
        let rtype = RecordType::from(RECORD_TYPE);
        let budget = Arc::new(Budget::new(self.config.limits.max_queries_per_lookup));
        let work = BUDGET.scope(budget.clone(), self.validated(&qname, rtype));
        let outcome = match self.within_deadline(work).await {
            Ok(Validated::Response(response)) => {
                let now = SystemTime::now();
                let outcome = classify(&qname, &response, now);
                self.learn(&response, &outcome, now).await;
                outcome
            }
            Ok(Validated::Unsigned(absence)) => Ok(Answer::Absent(absence)),
            Err(e) => Err(e),
        };
        let outcome = with_rejection(outcome, &budget);
        self.flush_if_bogus(&outcome);
        (
            outcome,
            LookupCost {
                queries: budget.queries(),
            },
        )
    }

    /// Looks up the A and AAAA RRsets of `name` (in parallel, within one lookup deadline and one
    /// query budget) and validates them like IPSECKEY: for binding a name to a peer's address.
    pub async fn lookup_addresses(&self, name: &Name) -> Result<AddressAnswer, LookupError> {
        let qname = name.to_lowercase();
        let budget = Arc::new(Budget::new(self.config.limits.max_queries_per_lookup));
        let both = futures_util::future::join(
            self.validated(&qname, RecordType::A),
            self.validated(&qname, RecordType::AAAA),
        );
        let work = BUDGET.scope(budget.clone(), both);
        let outcome = match tokio::time::timeout(self.config.lookup_timeout, work).await {
            Err(_) => Err(self.timeout()),
            Ok((a, aaaa)) => {
                let now = SystemTime::now();
                let a = a.as_ref().map_err(Clone::clone);
                let aaaa = aaaa.as_ref().map_err(Clone::clone);
                combine(
                    verdict(&qname, RecordType::A, a, now),
                    verdict(&qname, RecordType::AAAA, aaaa, now),
                    now,
                )
            }
        };
        let outcome = with_rejection(outcome, &budget);
        self.flush_if_bogus(&outcome);
        outcome
    }

    /// What cached covering proofs say about the IPSECKEY RRset at `qname` at `now`, without
    /// I/O: the name is below a provably insecure delegation (an `Insecure` answer without
    /// records), or validated NSEC records cached from earlier answers prove it has none (an
    /// `Absent` answer, RFC 8198). `None` when nothing cached covers it.
    pub fn covering(&self, qname: &Name, now: SystemTime) -> Option<Answer> {
        let rtype = RecordType::from(RECORD_TYPE);
        let owner = qname.to_lowercase();
        Some(
            match self
                .proofs
                .covering(&owner, rtype, &self.anchor_owners, now)?
            {
                Covered::Insecure { until, .. } => Answer::Insecure(Unsigned {
                    owner,
                    records: Vec::new(),
                    valid_until: until,
                }),
                Covered::Denied(denied) => Answer::Absent(Absence {
                    owner,
                    nxdomain: denied.nxdomain,
                    denial: Denial::Nsec,
                    valid_until: denied.until,
                }),
            },
        )
    }

    /// Keeps what a validated negative answer proves beyond its own name: its NSEC records, or,
    /// for an answer from an unsigned zone, the insecure cut above it (proven in the background
    /// by validated DS queries, [`walk::prove_cut`]).
    async fn learn(&self, msg: &Message, outcome: &Result<Answer, LookupError>, now: SystemTime) {
        let Ok(Answer::Absent(absence)) = outcome else {
            return;
        };
        match absence.denial {
            Denial::Nsec => self.proofs.denial(msg, absence.valid_until, now),
            Denial::Nsec3 => {}
            Denial::Unsigned => {
                let Some(apex) = walk::unsigned_apex(msg) else {
                    return;
                };
                let rtype = RecordType::from(RECORD_TYPE);
                let known = self.proofs.covering(&apex, rtype, &self.anchor_owners, now);
                if matches!(known, Some(Covered::Insecure { .. })) || !self.proofs.begin_walk(&apex)
                {
                    return;
                }
                if let Ok(checked) = self.checked().await {
                    let (checked, proofs) = (checked.clone(), self.proofs.clone());
                    let (limits, deadline) = (self.config.limits, self.config.lookup_timeout);
                    tokio::spawn(walk::prove_cut(checked, proofs, apex, limits, deadline));
                } else {
                    self.proofs.end_walk(&apex);
                }
            }
        }
    }

    /// A bogus outcome may come from a bad cached chain response: fetch the chain afresh next time.
    fn flush_if_bogus<T>(&self, outcome: &Result<T, LookupError>) {
        if matches!(outcome, Err(LookupError::Bogus(_))) {
            self.transport.flush_chain();
        }
    }

    async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, LookupError>>,
    ) -> Result<T, LookupError> {
        tokio::time::timeout(self.config.lookup_timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout()))
    }

    fn timeout(&self) -> LookupError {
        LookupError::Failure(Failure::Timeout(self.config.lookup_timeout))
    }

    /// One validated query: the response with hickory's proofs on every record, or a verdict
    /// reached from hickory's error.
    async fn validated(&self, qname: &Name, rtype: RecordType) -> Result<Validated, LookupError> {
        match self.query(qname.clone(), rtype).await {
            Ok(response) => Ok(Validated::Response(Box::new(response.into_message()))),
            Err(error) => self.map_error(qname, rtype, error),
        }
    }

    async fn query(&self, qname: Name, rtype: RecordType) -> Result<DnsResponse, NetError> {
        let checked = self.checked().await?;
        let query = Query::query(qname, rtype);
        checked
            .lookup(query, request_options())
            .first_answer()
            .await
    }

    /// The validating handle, built on first use: DS anchors need the DNSKEYs they match.
    async fn checked(&self) -> Result<&Checked, NetError> {
        self.checked
            .get_or_try_init(|| async {
                let mut anchors = self.config.anchors.trust_anchors();
                for owner in self.config.anchors.ds_owners() {
                    let keys = self.fetch_dnskeys(&owner).await?;
                    if self.config.anchors.resolve_ds(&owner, &keys, &mut anchors) == 0 {
                        return Err(NetError::Msg(format!(
                            "{ANCHOR_MISMATCH}: no DNSKEY at {owner} matches the DS trust anchor"
                        )));
                    }
                }
                let limits = self.config.limits;
                Ok(
                    DnssecDnsHandle::with_trust_anchor(self.transport.clone(), Arc::new(anchors))
                        .nsec3_iteration_limits(
                            Some(limits.nsec3_soft_iterations),
                            Some(limits.nsec3_hard_iterations),
                        )
                        .validation_cache_size(VALIDATION_CACHE),
                )
            })
            .await
    }

    async fn fetch_dnskeys(&self, owner: &Name) -> Result<Vec<DNSKEY>, NetError> {
        let query = Query::query(owner.clone(), RecordType::DNSKEY);
        let response = self
            .transport
            .lookup(query, request_options())
            .first_answer()
            .await?;
        Ok(response
            .answers
            .iter()
            .filter(|r| r.name == *owner)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key.clone()),
                _ => None,
            })
            .collect())
    }

    fn map_error(
        &self,
        qname: &Name,
        rtype: RecordType,
        error: NetError,
    ) -> Result<Validated, LookupError> {
        let failure = |f| Err(LookupError::Failure(f));
        let what = type_name(rtype);
        match error {
            NetError::Dns(DnsError::Nsec {
                response, proof, ..
            }) => match proof {
                // NSEC3 iterations over the soft limit: the denial is not authenticated.
                Proof::Insecure => Ok(Validated::Unsigned(Absence {
                    owner: qname.clone(),
                    nxdomain: response.response_code
                        == hickory_resolver::proto::op::ResponseCode::NXDomain,
                    denial: Denial::Unsigned,
                    valid_until: SystemTime::now() + Duration::from_secs(60),
                })),
                // hickory rejects correct NSEC wildcard answers; check RFC 4035 5.3.4 ourselves.
                _ if proves_nsec_wildcard_answer(qname, rtype, &response) => {
                    Ok(Validated::Response(Box::new(response.into_message())))
                }
                _ => Err(LookupError::Bogus(format!(
                    "the denial of existence (NSEC/NSEC3) for {qname} {what} does not validate"
                ))),
            },
            NetError::Dns(DnsError::DnssecBogus) => Err(LookupError::Bogus(format!(
                "{qname} {what} does not validate"
            ))),
            NetError::Dns(DnsError::ResponseCode(code)) => {
                failure(Failure::Response(code.to_string()))
            }
            NetError::Dns(DnsError::NoRecordsFound(no)) => failure(Failure::Response(format!(
                "unvalidated {}",
                no.response_code
            ))),
            NetError::Msg(m) if m.starts_with(REJECTED) => Err(LookupError::Bogus(m)),
            NetError::Msg(m) if m.starts_with(ANCHOR_MISMATCH) => Err(LookupError::Bogus(m)),
            NetError::Message(m) if m.contains("validation depth") => {
                Err(LookupError::Bogus(format!("{m} for {qname}")))
            }
            NetError::Timeout => failure(Failure::Network(format!(
                "no answer from upstream within {:?} x {}",
                self.config.query_timeout, self.config.attempts
            ))),
            NetError::NoConnections => {
                failure(Failure::Network("no upstream server reachable".into()))
            }
            other => failure(Failure::Network(other.to_string())),
        }
    }
}

/// A query's validated result before classification.
enum Validated {
    /// hickory's response, every record carrying its proof.
    Response(Box<Message>),
    /// A denial hickory could not authenticate because the zone is (provably) unsigned.
    Unsigned(Absence),
}

/// The verdict on one RRset from a validated query.
fn verdict<'a>(
    qname: &Name,
    rtype: RecordType,
    validated: Result<&'a Validated, LookupError>,
    now: SystemTime,
) -> Result<Verdict<'a>, LookupError> {
    match validated? {
        Validated::Response(msg) => classify_rrset(qname, rtype, msg, now),
        Validated::Unsigned(absence) => Ok(Verdict::Absent(absence.clone())),
    }
}

const ANCHOR_MISMATCH: &str = "trust anchor";

pub(crate) fn request_options() -> DnsRequestOptions {
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    options.edns_set_dnssec_ok = true;
    options.edns_payload_len = EDNS_PAYLOAD;
    options.recursion_desired = true;
    options
}

/// A bogus outcome caused by a work limit says which limit.
fn with_rejection<T>(outcome: Result<T, LookupError>, budget: &Budget) -> Result<T, LookupError> {
    match outcome {
        Err(LookupError::Bogus(why)) if !why.starts_with(REJECTED) => {
            let limit = budget.rejection.lock().ok().and_then(|r| r.clone());
            Err(LookupError::Bogus(match limit {
                Some(limit) => format!("{why} ({limit})"),
                None => why,
            }))
        }
        other => other,
    }
}

fn name_servers(upstream: &Upstream) -> Result<(Vec<NameServerConfig>, ResolverOpts), LookupError> {
    let config_error = |m: String| LookupError::Failure(Failure::Config(m));
    match upstream {
        Upstream::System => {
            let (config, opts) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| config_error(format!("reading resolv.conf: {e}")))?;
            let (_, _, servers) = config.into_parts();
            if servers.is_empty() {
                return Err(config_error("resolv.conf names no server".into()));
            }
            Ok((servers, opts))
        }
        Upstream::Servers(addrs) => Ok((
            addrs
                .iter()
                .map(|a| with_port(NameServerConfig::udp_and_tcp(a.ip()), a.port()))
                .collect(),
            ResolverOpts::default(),
        )),
        Upstream::Tls {
            servers,
            server_name,
            ..
        } => Ok((
            servers
                .iter()
                .map(|a| {
                    with_port(
                        NameServerConfig::tls(a.ip(), server_name.as_str().into()),
                        a.port(),
                    )
                })
                .collect(),
            ResolverOpts::default(),
        )),
    }
}

fn with_port(mut server: NameServerConfig, port: u16) -> NameServerConfig {
    for connection in &mut server.connections {
        connection.port = port;
    }
    server
}

/// Debian's CA bundle, used for DNS-over-TLS when no CA file is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn tls_config(upstream: &Upstream) -> Result<rustls::ClientConfig, LookupError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let config_error = |m: String| LookupError::Failure(Failure::Config(m));
    let mut roots = rustls::RootCertStore::empty();
    if let Upstream::Tls { ca_file, .. } = upstream {
        let path = ca_file.clone().unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| config_error(format!("reading {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| config_error(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
        }
        if roots.is_empty() {
            return Err(config_error(format!(
                "{} holds no CA certificate",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Runs one validated lookup on a private current-thread runtime: for command-line tools and
/// tests that have no runtime of their own.
pub fn lookup_blocking(
    config: ValidatorConfig,
    target: &LookupTarget,
) -> (Result<Answer, LookupError>, LookupCost) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let failure = Failure::Config(format!("cannot start a runtime: {e}"));
            return (Err(LookupError::Failure(failure)), LookupCost::default());
        }
    };
    runtime.block_on(async {
        match Validator::new(config) {
            Ok(validator) => validator.lookup_with_cost(target).await,
            Err(e) => (Err(e), LookupCost::default()),
        }
    })
}

/// A current-thread tokio runtime with I/O and timers, for callers without one.
pub fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
