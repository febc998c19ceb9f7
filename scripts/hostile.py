#!/usr/bin/env python3
"""Sends generated hostile operations (malformed and foreign ids, out-of-range
numbers, huge and operator-looking strings, impossible dates) at the clinical
queries and mutations of a running, seeded server as each seeded role, and
counts the error codes. Any INTERNAL (or code-less) error is printed: there
should be none.

Usage: scripts/hostile.py http://127.0.0.1:8080 [SEED] [OPERATIONS]
"""
import json, random, sys, urllib.request, base64
base = sys.argv[1]; random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
def post(q, v=None, tok=None):
    req = urllib.request.Request(base + "/graphql", data=json.dumps({"query": q, "variables": v or {}}).encode(),
        headers={"content-type": "application/json", **({"authorization": "Bearer " + tok} if tok else {})})
    try: return json.loads(urllib.request.urlopen(req, timeout=30).read())
    except urllib.error.HTTPError as e: return json.loads(e.read() or b"{}")
toks = {r: post('mutation($e:String!){ login(email:$e, password:"alawael-dev-password"){accessToken} }', {"e": f"{r}@alawael.local"})["data"]["login"]["accessToken"] for r in ["admin","manager","therapist","user"]}
adm = toks["admin"]
ids = {}
for q, k in [("{ disabilityPrograms(first:5){nodes{id}} }","disabilityPrograms"),("{ beneficiaries(first:5){nodes{id}} }","beneficiaries"),
             ("{ enrollments(first:5){nodes{id}} }","enrollments"),("{ therapySessions(first:5){nodes{id}} }","therapySessions"),
             ("{ schedules(first:5){nodes{id}} }","schedules"),("{ assets(first:5){nodes{id}} }","assets"),("{ users(first:5){nodes{id}} }","users")]:
    ids[k] = [n["id"] for n in post(q, tok=adm)["data"][k]["nodes"]]
allids = sum(ids.values(), [])
def gid(): 
    return random.choice(allids + ["", "x", "VXNlcjo=", base64.urlsafe_b64encode(b"Schedule:zzz").decode(), "{\"$ne\":null}", "A"*500])
strs = ["", " ", "a", "A"*5000, "{\"$ne\":1}", "$where", ".*", "\u0000x", "نورة", "\ud83d\ude00", "R-101", "GYM-1", "<script>", "1e999"]
ints = [0, -1, 1, 5, 100, 101, 480, 481, 2147483647, -2147483648, 12]
dts = ["2026-01-05T09:00:00Z","2026-01-05T09:03:00Z","0001-01-01T00:00:00Z","9999-12-31T23:55:00Z","2026-13-01T00:00:00Z","x","2026-01-05T21:05:00Z","1970-01-01T00:00:00Z"]
dates = ["2015-03-02","0001-01-01","9999-12-31","2026-02-30","x","2030-01-01"]
def pick(kind):
    return {"id": gid, "str": lambda: random.choice(strs), "int": lambda: random.choice(ints), "dt": lambda: random.choice(dts), "date": lambda: random.choice(dates),
            "bool": lambda: random.choice([True, False])}[kind]()
OPS = [
 ("mutation($i: CreateDisabilityProgramInput!){createDisabilityProgram(input:$i){id}}", lambda: {"i": {"name": pick("str"), "category": "SPEECH", "capacity": pick("int"), "durationWeeks": pick("int"), "fee": {"amountMinor": random.choice([0,-5,2**62]), "currency": random.choice(["SAR","xx",""])}, "managerId": random.choice([None, gid()]), "therapistIds": [gid() for _ in range(random.randint(0,3))]}}),
 ("mutation($id: ID!, $i: UpdateDisabilityProgramInput!){updateDisabilityProgram(id:$id, input:$i){id}}", lambda: {"id": gid(), "i": random.choice([{"capacity": pick("int")}, {"name": None}, {"managerId": None}, {"therapistIds": [gid()]}, {"description": pick("str")}])}),
 ("mutation($id: ID!){deleteDisabilityProgram(id:$id)}", lambda: {"id": gid()}),
 ("mutation($i: CreateBeneficiaryInput!){createBeneficiary(input:$i){id}}", lambda: {"i": {"fullName": pick("str"), "nationalId": random.choice(["1234567","12", "{$ne:1}", "ABCDE12345"]), "dateOfBirth": pick("date"), "gender": "MALE", "disabilityType": pick("str"), "severity": "MILD", "guardian": random.choice([None, {"name": pick("str"), "phone": pick("str")}]), "medicalNotes": pick("str")}}),
 ("mutation($id: ID!, $i: UpdateBeneficiaryInput!){updateBeneficiary(id:$id, input:$i){id}}", lambda: {"id": gid(), "i": random.choice([{"fullName": None}, {"nationalId": pick("str")}, {"guardian": None}, {"dateOfBirth": pick("date")}, {"consent": {"dataProcessing": True}}])}),
 ("mutation($i: EnrollBeneficiaryInput!){enrollBeneficiary(input:$i){id}}", lambda: {"i": {"beneficiaryId": gid(), "programId": gid(), "therapistId": gid(), "startDate": pick("date"), "goals": [{"description": pick("str"), "targetDate": pick("date")}]}}),
 ("mutation($id: ID!, $s: EnrollmentStatus!){setEnrollmentStatus(id:$id, status:$s){id}}", lambda: {"id": gid(), "s": random.choice(["PENDING","ACTIVE","COMPLETED","WITHDRAWN"])}),
 ("mutation($id: ID!, $i: UpdateEnrollmentInput!){updateEnrollment(id:$id, input:$i){id}}", lambda: {"id": gid(), "i": random.choice([{"therapistId": gid()}, {"therapistId": None}, {"goals": None}, {"goals": [{"description": pick("str")}]*random.choice([1,25])}])}),
 ("mutation($i: RecordTherapySessionInput!){recordTherapySession(input:$i){id}}", lambda: {"i": {"enrollmentId": gid(), "startedAt": pick("dt"), "durationMinutes": pick("int"), "attendance": "ATTENDED", "notes": pick("str"), "progressScore": pick("int"), "scheduleId": random.choice([None, gid()])}}),
 ("mutation($id: ID!, $i: UpdateTherapySessionInput!){updateTherapySession(id:$id, input:$i){id}}", lambda: {"id": gid(), "i": random.choice([{"progressScore": pick("int")}, {"startedAt": None}, {"notes": None}, {"durationMinutes": pick("int")}])}),
 ("mutation($id: ID!){deleteTherapySession(id:$id)}", lambda: {"id": gid()}),
 ("mutation($i: CreateScheduleInput!){createSchedule(input:$i){id}}", lambda: {"i": {"title": pick("str"), "resourceType": random.choice(["ROOM","ASSET","THERAPIST"]), "resourceId": random.choice([pick("str"), gid()]), "startDate": pick("dt"), "endDate": pick("dt"), "programId": random.choice([None, gid()])}}),
 ("mutation($id: ID!, $i: UpdateScheduleInput!){updateSchedule(id:$id, input:$i){id}}", lambda: {"id": gid(), "i": random.choice([{"title": None}, {"title": pick("str")}, {"programId": gid()}, {"programId": None}])}),
 ("mutation($id: ID!){cancelSchedule(id:$id){id}}", lambda: {"id": gid()}),
 ("mutation($id: ID!){exportBeneficiaryData(id:$id)}", lambda: {"id": gid()}),
 ("query($f: BeneficiaryFilter, $a: String, $n: Int){beneficiaries(first:$n, after:$a, filter:$f){totalCount nodes{id fullName nationalId sessions(first:3){nodes{id notes}}}}}", lambda: {"n": pick("int"), "a": random.choice([None, pick("str")]), "f": random.choice([{"search": pick("str")}, {"nationalId": pick("str")}, {"erased": True}])}),
 ("query($f: ScheduleFilter, $n: Int){schedules(last:$n, filter:$f){totalCount nodes{id createdBy{name} program{name}}}}", lambda: {"n": pick("int"), "f": random.choice([{"resourceId": pick("str")}, {"programId": gid()}, {"startDate": {"from": pick("dt"), "to": pick("dt")}}])}),
 ("query($f: AuditLogFilter){auditLog(first:5, filter:$f){totalCount nodes{seq action entityId changes{field before after}}}}", lambda: {"f": random.choice([{"entityId": gid()}, {"actorId": gid()}, {"action": pick("str")}, {"at": {"from": pick("dt")}}])}),
 ("query($ids: [ID!]!){nodes(ids:$ids){id}}", lambda: {"ids": [gid() for _ in range(random.randint(0,5))]}),
 ("query($id: ID!){node(id:$id){id ... on Enrollment { beneficiary{fullName} program{name} therapist{name} }}}", lambda: {"id": gid()}),
 ("query($id: ID!, $a: String, $b: String){disabilityProgram(id:$id){ enrollments(first:3, after:$a, before:$b){ totalCount nodes{ id } } }}", lambda: {"id": gid(), "a": random.choice([None, pick("str")]), "b": random.choice([None, pick("str")])}),
]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
codes = {}; internal = []
for _ in range(n):
    q, v = random.choice(OPS); role = random.choice(list(toks))
    r = post(q, v(), tok=toks[role])
    for e in r.get("errors", []) or []:
        c = (e.get("extensions") or {}).get("code", "<none>")
        codes[c] = codes.get(c, 0) + 1
        if c in ("INTERNAL", "<none>"): internal.append((q[:60], role, e))
print(n, "operations;", sorted(codes.items(), key=lambda x: -x[1]))
for i in internal[:10]: print("!!", i)
sys.exit(1 if internal else 0)
