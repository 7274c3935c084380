"""From scored pairs to golden leads: clusters, stable lead ids, survivorship, members, events, review.

Stable identity: a lead keeps its ``lead_id`` across runs. Each new cluster claims the previous ids
of its records; an id goes to the cluster holding most of its records (ties: the smaller id), each
cluster takes at most one id, so when leads merge the one with most records survives and when a
lead splits the larger part keeps it. Clusters with no id get a new one derived from their
smallest record id, so the same input gives the same ids. Merges and splits go to ``lead_events``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass

import duckdb
import numpy as np
import pyarrow as pa

from .clustering import cluster
from ..corrections.apply import overlay_corrections
from .match_config import MatchConfig
from .matching import SCHEMA, SCORED_PAIRS
from ..quality.profiling import relation_exists
from ..publish.publish import LEAD_MEMBERS as PUBLISHED_MEMBERS
from ..identity.ingest import LIBRARY_RECORDS
from ..sources.sources import load_sources
from ..refresh import PENDING_CHANGES, ensure_refresh_tables

log = logging.getLogger(__name__)

DECISIONS = f"{SCHEMA}.decisions"
DECISION_RECORDS = f"{SCHEMA}.decision_records"
LEAD_REGISTRY = f"{SCHEMA}.lead_registry"
LEAD_EVENTS = "published.lead_events"
# Built here, published together by publish_leads().
GOLDEN_LEADS = f"{SCHEMA}.golden_leads"
LEAD_MEMBERS = f"{SCHEMA}.lead_members"
REVIEW_QUEUE = f"{SCHEMA}.lead_review_queue"
NEW_EVENTS = f"{SCHEMA}.new_lead_events"
UNREACHABLE = f"{SCHEMA}.leads_unreachable"
# The records an incremental build covered (empty after a full build): what publish_lead_changes replaces.
BUILD_SCOPE = f"{SCHEMA}.build_scope"

# Kinds of conflict in the review queue, so a person settles one kind at a time (同类项批处理): the first
# whose condition holds names the pair. Conditions read the pair's comparison levels (gamma_*: -1 missing,
# 0 different; name 4 same, 3 same pinyin, 2 surname only, 1 pinyin close; contacts and company 1 shared).
_ANY_CONTACT_SHARED = "(gamma_mobiles = 1 or gamma_emails = 1 or gamma_wechat = 1 or gamma_qq = 1)"
REVIEW_KINDS: dict[str, tuple[str, str]] = {
    "chaining_guard": ("连锁保护拆开 (cut by the chaining guard)", "guard_cut"),
    "same_mobile_different_name": ("同手机号、姓名不同 (same mobile, different name)",
                                   "gamma_mobiles = 1 and gamma_name = 0"),
    "same_contact_different_name": ("同邮箱/微信/QQ、姓名不同 (same e-mail, WeChat or QQ, different name)",
                                    f"{_ANY_CONTACT_SHARED} and gamma_name = 0"),
    "same_name_company_different_contacts": ("同名同公司、联系方式不同 (same name and company, different contacts)",
                                             f"gamma_name >= 3 and gamma_company_core = 1 and not {_ANY_CONTACT_SHARED}"),
    "same_person_new_company": ("同名同联系方式、公司不同 (same name and contact, another company: a job change?)",
                                f"gamma_name >= 3 and gamma_company_core = 0 and {_ANY_CONTACT_SHARED}"),
    "similar_name": ("同联系方式、姓名相近或只有姓 (same contact, similar name or surname only)",
                     f"gamma_name in (1, 2) and {_ANY_CONTACT_SHARED}"),
    "other": ("其他可能是同一人的 (other pairs that may be one person)", "true"),
}


def _review_kind_sql() -> str:
    cases = " ".join(f"when {condition} then '{kind}'" for kind, (_, condition) in REVIEW_KINDS.items())
    return f"case {cases} end"


@dataclass
class LeadStats:
    records: int
    pairs_scored: int
    pairs_merged: int
    pairs_to_review: int
    clusters_split_by_guard: int
    largest_cluster_before_guard: int
    largest_lead: int
    leads: int
    leads_merged: int
    leads_split: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def ensure_matching_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"create schema if not exists {SCHEMA}")
    conn.execute("create schema if not exists published")
    conn.execute(f"""create table if not exists {DECISIONS} (
        decision_id bigint, lead_a varchar, lead_b varchar, decision varchar, decided_by varchar,
        decided_at timestamp default current_timestamp)""")
    # where a decision came from: a review workbook (its name, export time and hash); null for `decide`
    conn.execute(f"alter table {DECISIONS} add column if not exists origin varchar")
    conn.execute(f"create table if not exists {DECISION_RECORDS} (decision_id bigint, side varchar, record_id varchar)")
    conn.execute(f"""create table if not exists {LEAD_REGISTRY} (
        lead_id varchar primary key, created_at timestamp, merged_into varchar)""")
    conn.execute(f"""create table if not exists {LEAD_EVENTS} (
        event_at timestamp, event_type varchar, lead_id varchar, other_lead_id varchar, records bigint, detail varchar)""")


def record_decision(conn: duckdb.DuckDBPyConnection, lead_a: str, lead_b: str, decision: str, decided_by: str = "cli") -> int:
    """Store a person's decision on two published leads, with their current records, and return its id."""
    if decision not in ("same", "different"):
        raise ValueError(f"decision must be 'same' or 'different', not {decision!r}")
    if lead_a == lead_b:
        raise ValueError("a lead cannot be compared with itself")
    ensure_matching_tables(conn)
    for lead in (lead_a, lead_b):
        found = conn.execute(f"select count(*) from {PUBLISHED_MEMBERS} where lead_id = ?", [lead]).fetchone()[0]
        if not found:
            raise ValueError(f"lead {lead} is not in {PUBLISHED_MEMBERS}")
    conn.execute("begin transaction")
    try:
        decision_id = conn.execute(f"select coalesce(max(decision_id), 0) + 1 from {DECISIONS}").fetchone()[0]
        conn.execute(f"insert into {DECISIONS} (decision_id, lead_a, lead_b, decision, decided_by) values (?, ?, ?, ?, ?)",
                     [decision_id, lead_a, lead_b, decision, decided_by])
        for side, lead in (("a", lead_a), ("b", lead_b)):
            conn.execute(f"insert into {DECISION_RECORDS} select ?, ?, record_id from {PUBLISHED_MEMBERS} where lead_id = ?",
                         [decision_id, side, lead])
        rebuild_decided_leads(conn, [decision_id])
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return decision_id


def rebuild_decided_leads(conn: duckdb.DuckDBPyConnection, decision_ids: list[int]) -> int:
    """List the records of these decisions as pending changes, so the next run, incremental or full,
    rebuilds their leads with the decisions; return how many records."""
    if not decision_ids:
        return 0
    ensure_refresh_tables(conn)
    return conn.execute(f"""insert into {PENDING_CHANGES}
                            select distinct record_id, 'decided', null from {DECISION_RECORDS}
                            where decision_id in ({', '.join(str(int(i)) for i in decision_ids)})""").fetchone()[0]


def new_lead_id(seed: str, salt: int = 0) -> str:
    return "L" + hashlib.md5(f"{seed}:{salt}".encode()).hexdigest()[:12].upper()


def build_leads(conn: duckdb.DuckDBPyConnection, records: str, config: MatchConfig, scope: str | None = None) -> LeadStats:
    """Cluster scored pairs into leads with stable ids; write golden leads, members, review queue, events.

    With ``scope`` (a relation of record ids: whole published leads plus the changed records that reach
    them, see incremental.py) only those records are clustered, and the tables built hold only their
    leads; ``publish_lead_changes`` puts them in place of the leads they replace."""
    ensure_matching_tables(conn)
    conn.execute(f"create or replace table {BUILD_SCOPE} as "
                 + (f"select distinct record_id from {scope}" if scope else "select null::varchar as record_id where false"))
    if scope:
        conn.execute(f"create or replace temp view scoped_records as select * from {records} "
                     f"where record_id in (select record_id from {BUILD_SCOPE})")
        records = "scoped_records"
    conn.execute(f"create or replace temp table nodes as select record_id, (row_number() over (order by record_id) - 1)::integer as node from {records}")
    n_nodes = conn.execute("select count(*) from nodes").fetchone()[0]
    has_previous = relation_exists(conn, PUBLISHED_MEMBERS)

    # Human decisions, by record, for the records present now.
    conn.execute(f"""
        create or replace temp table decision_pairs as
        select d.decision, a.node as node_a, b.node as node_b
        from {DECISIONS} d
        join {DECISION_RECORDS} ra on ra.decision_id = d.decision_id and ra.side = 'a'
        join {DECISION_RECORDS} rb on rb.decision_id = d.decision_id and rb.side = 'b'
        join nodes a on a.record_id = ra.record_id
        join nodes b on b.record_id = rb.record_id
        -- the latest decision on a pair of leads wins
        qualify d.decision_id = max(d.decision_id) over (partition by least(d.lead_a, d.lead_b), greatest(d.lead_a, d.lead_b))
    """)
    conn.execute(f"""
        create or replace temp table candidate_edges as
        select l.node as node_l, r.node as node_r, p.record_id_l, p.record_id_r, p.match_probability, p.match_weight,
               p.names_compatible, p.explanation,
               p.gamma_mobiles, p.gamma_emails, p.gamma_wechat, p.gamma_qq, p.gamma_name, p.gamma_company_core,
               case when dp.decision = 'different' then 'different'
                    when dp.decision = 'same' then 'same'
                    when p.match_probability >= {config.auto_merge} and p.names_compatible then 'merge'
                    when p.match_probability >= {config.auto_merge} then 'names differ'
                    else 'review band' end as verdict
        from {SCORED_PAIRS} p
        join nodes l on l.record_id = p.record_id_l
        join nodes r on r.record_id = p.record_id_r
        left join decision_pairs dp on (dp.node_a = l.node and dp.node_b = r.node) or (dp.node_a = r.node and dp.node_b = l.node)
    """)
    merge_edges = conn.execute("""
        select node_l, node_r, match_weight, row_number() over () - 1 as edge from candidate_edges where verdict = 'merge'
        union all
        select node_a, node_b, 'inf'::double, null from decision_pairs where decision = 'same'
    """).fetchnumpy()
    cannot = conn.execute("select node_a, node_b from decision_pairs where decision = 'different'").fetchall()
    # two records whose names clearly differ must not end up in one lead through a third record
    names_differ = conn.execute("select node_l, node_r from candidate_edges where not names_compatible").fetchnumpy()
    result = cluster(
        n_nodes,
        merge_edges["node_l"].astype(np.int64),
        merge_edges["node_r"].astype(np.int64),
        merge_edges["match_weight"].astype(np.float64),
        cannot,
        config.max_cluster_size,
        (names_differ["node_l"].astype(np.int64), names_differ["node_r"].astype(np.int64)),
    )
    cut = np.zeros(len(merge_edges["node_l"]), dtype=bool)
    cut[result.cut_edges] = True
    conn.register("clusters_frame", {"node": np.arange(n_nodes, dtype=np.int64), "cluster": result.labels.astype(np.int64)})
    conn.execute("create or replace temp table clusters as select n.record_id, c.cluster from clusters_frame c join nodes n using (node)")
    conn.unregister("clusters_frame")
    cut_pairs = {"node_l": merge_edges["node_l"][cut].astype(np.int64), "node_r": merge_edges["node_r"][cut].astype(np.int64)}
    conn.register("cut_frame", cut_pairs)
    conn.execute("create or replace temp table guard_cut as select * from cut_frame")
    conn.unregister("cut_frame")

    assign_lead_ids(conn, has_previous, scoped=scope is not None)
    _members(conn, records)
    _golden(conn, records, config)
    # events and manual edits hold over survivorship: a rebuild never reverts one (pipelines/lib/corrections)
    overlay_corrections(conn, GOLDEN_LEADS)
    _unreachable(conn)
    _review_queue(conn, records)
    stats = conn.execute(f"""
        select
            (select count(*) from nodes),
            (select count(*) from candidate_edges),
            (select count(*) from candidate_edges where verdict in ('merge', 'same')) - (select count(*) from guard_cut),
            (select count(*) from {REVIEW_QUEUE}),
            (select count(*) from {GOLDEN_LEADS}),
            (select coalesce(max(record_count), 0) from {GOLDEN_LEADS}),
            (select count(*) from {NEW_EVENTS} where event_type = 'merged'),
            (select count(*) from {NEW_EVENTS} where event_type = 'split')
    """).fetchone()
    return LeadStats(
        records=stats[0], pairs_scored=stats[1], pairs_merged=stats[2], pairs_to_review=stats[3],
        clusters_split_by_guard=result.split_components, largest_cluster_before_guard=result.largest_component,
        largest_lead=stats[5], leads=stats[4], leads_merged=stats[6], leads_split=stats[7],
    )


def assign_lead_ids(conn: duckdb.DuckDBPyConnection, has_previous: bool, scoped: bool = False) -> None:
    """Give every cluster a lead id (temp table ``cluster_ids``) and write the merge/split events."""
    previous = f"select record_id, lead_id from {PUBLISHED_MEMBERS}" if has_previous else \
        "select null::varchar as record_id, null::varchar as lead_id where false"
    if has_previous and scoped:  # only the leads being rebuilt claim and lose records
        previous += f" where record_id in (select record_id from {BUILD_SCOPE})"
    conn.execute(f"create or replace temp table previous_members as {previous}")
    # A record that replaced another (a row edited in place in a snapshot extract) claims as its
    # predecessor did, so a corrected row keeps its lead's id.
    if has_previous and relation_exists(conn, LIBRARY_RECORDS):
        conn.execute(f"""
            create or replace temp table successor_claims as
            select r.record_id, p.lead_id from {LIBRARY_RECORDS} r
            join previous_members p on p.record_id = r.replaces
            where r.record_id not in (select record_id from previous_members)
        """)
    else:
        conn.execute("create or replace temp table successor_claims as select * from previous_members where false")
    claims = conn.execute("""
        select c.cluster, p.lead_id, count(*) as n
        from clusters c join (select * from previous_members union all select * from successor_claims) p using (record_id)
        group by all
        order by n desc, p.lead_id, c.cluster
    """).fetchall()
    taken_clusters: dict[int, str] = {}
    taken_ids: set[str] = set()
    for cluster_label, lead_id, _ in claims:
        if cluster_label not in taken_clusters and lead_id not in taken_ids:
            taken_clusters[cluster_label] = lead_id
            taken_ids.add(lead_id)
    # typed: an empty batch (a duplicate file in an incremental run) must still give string ids
    conn.register("claimed_frame", pa.table({"cluster": pa.array(list(taken_clusters), pa.int64()),
                                             "lead_id": pa.array(list(taken_clusters.values()), pa.string())}))
    conn.execute("create or replace temp table claimed as select * from claimed_frame")
    conn.unregister("claimed_frame")
    # Clusters without an id: derived from their smallest record id, salted past any id ever issued.
    unclaimed = conn.execute("""
        select c.cluster, min(c.record_id) from clusters c anti join claimed k using (cluster) group by c.cluster
    """).fetchall()
    issued = {row[0] for row in conn.execute(f"select lead_id from {LEAD_REGISTRY}").fetchall()} | taken_ids
    fresh_clusters, fresh_ids = [], []
    for cluster_label, smallest in unclaimed:
        salt = 0
        lead_id = new_lead_id(smallest)
        while lead_id in issued:
            salt += 1
            lead_id = new_lead_id(smallest, salt)
        issued.add(lead_id)
        fresh_clusters.append(cluster_label)
        fresh_ids.append(lead_id)
    conn.register("fresh_frame", pa.table({"cluster": pa.array(fresh_clusters, pa.int64()),
                                           "lead_id": pa.array(fresh_ids, pa.string())}))
    conn.execute("create or replace temp table cluster_ids as select * from claimed union all select * from fresh_frame")
    conn.unregister("fresh_frame")
    conn.execute("create or replace temp table record_leads as select c.record_id, i.lead_id from clusters c join cluster_ids i using (cluster)")
    # Events: a previous lead whose id went nowhere was merged into the lead holding most of its records;
    # a previous lead that kept its id but lost records to other leads was split.
    conn.execute(f"""
        create or replace table {NEW_EVENTS} as
        with moves as (
            select p.lead_id as old_id, r.lead_id as new_id, count(*) as n
            from previous_members p join record_leads r using (record_id)
            group by all
        ),
        surviving as (select distinct lead_id from cluster_ids)
        select current_timestamp as event_at, 'merged' as event_type, m.old_id as lead_id, m.new_id as other_lead_id,
               m.n as records, 'merged into ' || m.new_id as detail
        from moves m
        where m.old_id not in (select lead_id from surviving)
        qualify row_number() over (partition by m.old_id order by m.n desc, m.new_id) = 1
        union all
        select current_timestamp, 'split', m.old_id, m.new_id, m.n, m.n || ' records split off into ' || m.new_id
        from moves m
        where m.old_id in (select lead_id from surviving) and m.new_id <> m.old_id
        union all
        select current_timestamp, 'created', i.lead_id, null, count(*), 'new lead'
        from cluster_ids i join clusters c using (cluster)
        where i.lead_id not in (select lead_id from previous_members)
          and i.lead_id not in (select lead_id from {LEAD_REGISTRY})
        group by i.lead_id
        union all
        -- a record retired from its source (or no longer a lead) leaves its lead, with an event
        select current_timestamp, 'record_retired', p.lead_id, null, 1,
               'record ' || p.record_id || ' is no longer in the library'
        from previous_members p anti join clusters c using (record_id)
        union all
        -- a lead left with no records is retired; its id is never issued again (the registry keeps it)
        select current_timestamp, 'retired', p.lead_id, null, count(*),
               'every record of the lead is gone; the id is retired and never reused'
        from previous_members p
        where p.lead_id not in (select lead_id from cluster_ids)
        group by p.lead_id
        having count(*) filter (where p.record_id in (select record_id from clusters)) = 0
    """)


def _members(conn: duckdb.DuckDBPyConnection, records: str) -> None:
    """Every record with its lead and why it is there: the strongest link to another member."""
    conn.execute(f"""
        create or replace table {LEAD_MEMBERS} as
        with links as (
            select e.record_id_l as record_id, e.record_id_r as partner, e.match_probability, e.explanation, e.verdict
            from candidate_edges e where e.verdict in ('merge', 'same')
            union all
            select e.record_id_r, e.record_id_l, e.match_probability, e.explanation, e.verdict
            from candidate_edges e where e.verdict in ('merge', 'same')
            union all
            -- a person's "same" also links records the model never compared
            select a.record_id, b.record_id, 1.0, null, 'same'
            from decision_pairs d join nodes a on a.node = d.node_a join nodes b on b.node = d.node_b
            where d.decision = 'same'
            union all
            select b.record_id, a.record_id, 1.0, null, 'same'
            from decision_pairs d join nodes a on a.node = d.node_a join nodes b on b.node = d.node_b
            where d.decision = 'same'
        ),
        best as (
            select l.* from links l
            join record_leads a on a.record_id = l.record_id
            join record_leads b on b.record_id = l.partner and b.lead_id = a.lead_id
            qualify row_number() over (partition by l.record_id order by (l.verdict = 'same') desc, l.match_probability desc, l.partner) = 1
        )
        select
            r.lead_id, r.record_id, s.source_system, s.source_file, s.source_row,
            b.partner as linked_record_id,
            b.match_probability,
            case
                when b.record_id is null then '单条记录 (single record)'
                when b.verdict = 'same' then '人工确认为同一人 (a person decided: same)'
                else b.explanation
            end as match_explanation
        from record_leads r
        join {records} s using (record_id)
        left join best b using (record_id)
    """)


def _golden(conn: duckdb.DuckDBPyConnection, records: str, config: MatchConfig) -> None:
    """Golden lead per cluster: per field the surviving value by the configured rules; all contacts kept."""
    # Source priority is declared with the sources (pipelines/config/sources.yaml): lower wins.
    source_priority = [source.name for source in load_sources()]
    priority = " ".join(f"when '{s}' then {i}" for i, s in enumerate(source_priority))
    rules = {
        # Recency is when a record says it was last updated (更新时间). Only among records whose update
        # times are equal or missing does the creation time (创建时间/登记时间) order them: a record that
        # says only when it was created is never taken as newer than one that says when it was updated.
        "most_recent": "r.updated_at desc nulls last, r.created_at desc nulls last",
        "source_priority": f"(case r.source_system {priority} else {len(source_priority)} end)",
        "most_complete": "r.filled desc",
    }
    order = ", ".join(rules[rule] for rule in config.survivorship_order) + ", r.record_id"

    # One survivorship rank per record within its lead, computed once; each field then takes the
    # best-ranked record that has a value (arg_min needs no sort per field). The place is one unit:
    # province, city, district and address all come from the record with the fullest place (ties: the
    # survivorship order), so a lead never pairs one record's city with another record's street.
    def pick(expr: str, present: str | None = None) -> str:
        return f"arg_min({expr}, rank) filter (where {present or expr + ' is not null'})"

    contact_lists = {
        "mobiles": "unnest(mobiles)", "landlines": "unnest(landlines)", "emails": "unnest(emails)",
        "wechats": "wechat", "qqs": "qq",
    }
    exploded = " union all ".join(
        f"select lead_id, '{name}' as kind, {expr} as value, rank from ranked" for name, expr in contact_lists.items()
    )
    lists = ", ".join(
        f"list(value order by rank, value) filter (where kind = '{name}') as {name}" for name in contact_lists
    )
    conn.execute(f"""
        create or replace table {GOLDEN_LEADS} as
        with scored as (
            select r.*, l.lead_id,
                   (r.name is not null)::int + (r.mobile is not null)::int + (r.email is not null)::int
                   + (r.wechat is not null)::int + (r.company is not null)::int + (r.job_title is not null)::int
                   + (r.address is not null)::int + (r.city is not null)::int as filled,
                   (r.province is not null)::int + (r.city is not null)::int + (r.district is not null)::int
                   + (r.address is not null)::int as place_filled
            from {records} r
            join record_leads l using (record_id)
        ),
        ranked as (
            select *, row_number() over (partition by lead_id order by {order}) as rank,
                   row_number() over (partition by lead_id order by r.place_filled desc, {order}) as place_rank
            from scored r
        ),
        contacts as (
            select lead_id, kind, value, min(rank) as rank
            from ({exploded})
            where value is not null
            group by all
        ),
        contact_lists as (
            select lead_id, {lists} from contacts group by lead_id
        ),
        fields as (
            select
                r.lead_id,
                count(*) as record_count,
                -- a full name beats a surname left over from "王总"
                coalesce({pick('r.name', 'length(r.name) >= 2')}, {pick('r.name')}) as name,
                coalesce({pick('r.name_pinyin', 'length(r.name) >= 2')}, {pick('r.name_pinyin')}) as name_pinyin,
                {pick('r.company')} as company,
                {pick('r.company_core', 'r.company is not null')} as company_core,
                {pick('r.job_title')} as job_title,
                {pick('r.job_title_canonical', 'r.job_title is not null')} as job_title_canonical,
                max(r.province) filter (where r.place_rank = 1) as province,
                max(r.city) filter (where r.place_rank = 1) as city,
                max(r.district) filter (where r.place_rank = 1) as district,
                max(r.address) filter (where r.place_rank = 1) as address,
                {pick('r.douyin')} as douyin,
                {pick('r.kuaishou')} as kuaishou,
                {pick('r.source')} as source,
                {pick('r.owner')} as owner,
                max(r.updated_at) as updated_at,
                min(r.created_at) as created_at,
                -- when the library first saw any of its records (the first import that wrote it), not when
                -- their current versions were written
                min(r.first_ingested_at) as first_ingested_at,
                list_sort(list(distinct r.source_system)) as source_systems
            from ranked r
            group by r.lead_id
        )
        select
            f.lead_id, f.name, f.name_pinyin,
            c.mobiles[1] as mobile, coalesce(c.mobiles, []) as mobiles,
            c.landlines[1] as landline, coalesce(c.landlines, []) as landlines,
            c.emails[1] as email, coalesce(c.emails, []) as emails,
            c.wechats[1] as wechat, coalesce(c.wechats, []) as wechats,
            c.qqs[1] as qq, coalesce(c.qqs, []) as qqs,
            f.douyin, f.kuaishou, f.company, f.company_core, f.job_title, f.job_title_canonical,
            f.province, f.city, f.district, f.address, f.source, f.owner, f.updated_at, f.created_at,
            f.record_count, f.source_systems, f.first_ingested_at,
            false as do_not_contact  -- only a correction (an opt-out event, an edit) sets it
        from fields f
        left join contact_lists c using (lead_id)
    """)


def _unreachable(conn: duckdb.DuckDBPyConnection) -> None:
    """Leads with no valid mobile, e-mail, WeChat or QQ, with why, so a specialist can repair the source
    rows; a repaired row makes the lead reachable on the next run."""
    from ..publish.publish import REACHABLE

    conn.execute(f"""
        create or replace table {UNREACHABLE} as
        with issues as (
            select m.lead_id, i.field, i.status, i.source_file, i.source_row
            from {LEAD_MEMBERS} m
            join marts.lead_field_issues i using (record_id)
            where i.field in ('mobile', 'landline', 'email', 'wechat', 'qq')
        ),
        reasons as (
            select lead_id,
                   list(distinct case field
                        when 'mobile' then '手机号无效 (mobile invalid)'
                        when 'landline' then '座机无效 (landline invalid)'
                        when 'email' then '邮箱无效 (e-mail invalid)'
                        when 'wechat' then '微信号无效 (WeChat id invalid)'
                        when 'qq' then 'QQ号无效 (QQ invalid)' end) as reasons,
                   list(distinct source_file || '#' || source_row) as rows_to_fix
            from issues group by lead_id
        )
        select g.*,
               coalesce(array_to_string(list_sort(r.reasons), '; '),
                        case when len(g.landlines) > 0 then '只有座机 (only a landline: no mobile, e-mail, WeChat or QQ)'
                             else '无任何联系方式 (no contact at all)' end) as reason,
               coalesce(r.rows_to_fix, []) as rows_to_fix
        from {GOLDEN_LEADS} g
        left join reasons r using (lead_id)
        where not {REACHABLE}
    """)


def _review_queue(conn: duckdb.DuckDBPyConnection, records: str) -> None:
    """Pairs a person should look at: the review band, strong pairs whose names differ, and guard cuts."""
    conn.execute(f"""
        create or replace table {REVIEW_QUEUE} as
        with flagged as (
            select e.*, g.node_l is not null as guard_cut, case when g.node_l is not null then 'chaining guard: cluster too large, a "different" decision, or names that clearly differ'
                             when e.verdict = 'names differ' then 'strong contact match but names differ'
                             else 'review band' end as reason
            from candidate_edges e
            left join guard_cut g on g.node_l = e.node_l and g.node_r = e.node_r
            where e.verdict in ('review band', 'names differ') or g.node_l is not null
        )
        select
            md5(least(f.record_id_l, f.record_id_r) || '|' || greatest(f.record_id_l, f.record_id_r)) as review_id,
            a.lead_id as lead_id_l, b.lead_id as lead_id_r,
            f.record_id_l, f.record_id_r,
            rl.name as name_l, rr.name as name_r, rl.mobile as mobile_l, rr.mobile as mobile_r,
            rl.email as email_l, rr.email as email_r, rl.company as company_l, rr.company as company_r,
            rl.source_file || '#' || rl.source_row as source_l, rr.source_file || '#' || rr.source_row as source_r,
            round(f.match_probability, 4) as match_probability, round(f.match_weight, 2) as match_weight,
            f.explanation, f.reason, {_review_kind_sql()} as conflict_kind
        from flagged f
        join record_leads a on a.record_id = f.record_id_l
        join record_leads b on b.record_id = f.record_id_r
        join {records} rl on rl.record_id = f.record_id_l
        join {records} rr on rr.record_id = f.record_id_r
        where a.lead_id <> b.lead_id  -- already in one lead through other links: nothing to decide
          and not exists (  -- a person has already decided on these two leads
              select 1 from {DECISIONS} d
              where (d.lead_a = a.lead_id and d.lead_b = b.lead_id) or (d.lead_a = b.lead_id and d.lead_b = a.lead_id))
        qualify row_number() over (partition by least(a.lead_id, b.lead_id), greatest(a.lead_id, b.lead_id)
                                   order by f.match_probability desc, f.record_id_l, f.record_id_r) = 1
    """)
