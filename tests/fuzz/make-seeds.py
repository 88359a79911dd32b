#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into OUT/<target>/: small files cut from the real data in
../shared (the CCF ontology in its three formats, the MERFISH CSV, the NRRD header) and small
hand-made files of each format. Seeds are generated here at test time rather than committed, so
the repository holds no binary blobs; the AnnData seeds come from make_h5ad_seeds (core's writer).

usage: make-seeds.py SHARED_DIR OUT_DIR"""
import gzip, io, json, os, struct, sys, types, pickle, zipfile, zlib, collections

shared, out = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def shared_file(*parts):
    p = os.path.join(shared, *parts)
    return p if os.path.exists(p) else None


# ---- NRRD / NHDR ----
vox = bytes(range(64))
for enc, payload in (("raw", vox), ("gzip", gzip.compress(vox))):
    put("fuzz_nrrd", f"u8-{enc}.nrrd", b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nspacings: 25 25 25\n"
        b"encoding: " + enc.encode() + b"\n\n" + payload)
i16 = struct.pack("<64h", *range(-32, 32))
put("fuzz_nrrd", "i16-le-dirs.nrrd", b"NRRD0005\n# a comment\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
    b"sizes: 4 4 4\nspace directions: (25,0,0) (0,25,0) (0,0,25)\nendian: little\nencoding: raw\n\n" + i16)
put("fuzz_nrrd", "u32-be-gz.nrrd", b"NRRD0004\ntype: uint32\ndimension: 3\nsizes: 2 2 2\nendian: big\nencoding: gz\n"
    b"byte skip: 0\n\n" + gzip.compress(struct.pack(">8I", *range(8))))
put("fuzz_nrrd", "ascii.nrrd", b"NRRD0004\ntype: float\ndimension: 3\nsizes: 2 2 1\nencoding: ascii\n\n1 2.5\nnan -4\n")
put("fuzz_nrrd", "detached.nhdr", b"NRRD0004\ntype: uint32\ndimension: 3\nsizes: 4 4 4\nendian: little\n"
    b"encoding: raw\ndata file: data.raw\n")
put("fuzz_nrrd", "lineskip.nhdr", b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n"
    b"line skip: 0\nbyte skip: -1\ndata file: ./data.raw\n")
if shared_file("data", "ccf", "annotation_25.nrrd"):
    # The real CCF header (the Allen files' fields and their wrong `space`), with small sizes.
    with open(shared_file("data", "ccf", "annotation_25.nrrd"), "rb") as f:
        head = f.read(4096)
    header = head[: head.index(b"\n\n") + 1].decode("latin-1")
    lines = [("sizes: 2 2 2" if l.startswith("sizes:") else l) for l in header.splitlines()]
    data = struct.pack("<8I", *range(8))
    put("fuzz_nrrd", "ccf-header.nrrd", ("\n".join(lines) + "\n\n").encode("latin-1") + gzip.compress(data))

# ---- NIfTI-1 ----
def nifti(magic, datatype, bitpix, dims, pixdim, payload, vox_offset=352.0, endian="<", units=3):
    h = bytearray(348)
    struct.pack_into(endian + "i", h, 0, 348)
    struct.pack_into(endian + "8h", h, 40, len(dims), *(list(dims) + [1] * (7 - len(dims))))
    struct.pack_into(endian + "hh", h, 70, datatype, bitpix)
    struct.pack_into(endian + "8f", h, 76, 1.0, *(list(pixdim) + [1.0] * (7 - len(pixdim))))
    struct.pack_into(endian + "f", h, 108, vox_offset)
    h[123] = units
    h[344:348] = magic
    return bytes(h) + (b"\0\0\0\0" if magic == b"n+1\0" else b"") + payload

put("fuzz_nifti", "u8.nii", b"\0" + nifti(b"n+1\0", 2, 8, (4, 4, 4), (25, 25, 25), vox)[1:])  # first byte even: .nii
put("fuzz_nifti", "i32-be.nii", b"\0" + nifti(b"n+1\0", 8, 32, (2, 2, 2), (0.025,) * 3, struct.pack(">8i", *range(8)), endian=">", units=2)[1:])
put("fuzz_nifti", "f32.nii.gz", gzip.compress(nifti(b"n+1\0", 16, 32, (2, 2, 2), (10, 10, 10), struct.pack("<8f", *range(8)))))
put("fuzz_nifti", "pair.hdr", b"\x01" + nifti(b"ni1\0", 2, 8, (8, 8, 8), (25, 25, 25), b"", vox_offset=0)[1:])
put("fuzz_nifti", "u16-3d-of-4d.nii", b"\0" + nifti(b"n+1\0", 512, 16, (2, 2, 2, 1), (1, 1, 1), struct.pack("<8H", *range(8)))[1:])

# ---- gzip / zlib ----
text = b"atlascope " * 40
put("fuzz_gzip", "member.gz", b"\0\2\0" + gzip.compress(text))        # expected size 512
put("fuzz_gzip", "two-members.gz", b"\x90\1\0" + gzip.compress(text) + gzip.compress(b"second member\n"))
put("fuzz_gzip", "zlib.z", b"\x10\0\0" + zlib.compress(bytes(range(256)) * 4))
put("fuzz_gzip", "stored.gz", b"\x00\1\0" + gzip.compress(os.urandom(256), compresslevel=0))

# ---- ontologies: the three real formats, cut to a few structures ----
if shared_file("data", "ccf", "structures.json"):
    flat = json.load(open(shared_file("data", "ccf", "structures.json")))
    put("fuzz_ontology", "flat.json", json.dumps(flat[:12], indent=1))
if shared_file("data", "ccf", "structure_graph.json"):
    graph = json.load(open(shared_file("data", "ccf", "structure_graph.json")))
    def prune(node, depth):
        node = dict(node)
        node["children"] = [prune(c, depth + 1) for c in node.get("children", [])[:2]] if depth < 3 else []
        return node
    roots = graph["msg"] if isinstance(graph, dict) and "msg" in graph else graph
    put("fuzz_ontology", "nested.json", json.dumps({"success": True, "msg": [prune(r, 0) for r in roots[:1]]}))
if shared_file("data", "ccf", "structure_tree_safe_2017.csv"):
    with open(shared_file("data", "ccf", "structure_tree_safe_2017.csv"), "rb") as f:
        put("fuzz_ontology", "tree.csv", b"".join(f.readlines()[:14]))
put("fuzz_ontology", "minimal.csv", "id,acronym,name,parent_structure_id,color_hex_triplet\n997,root,root,,FFFFFF\n8,grey,Basic cell groups,997,BFDAE3\n")

# ---- CSV/TSV cell tables (first byte: mode bits, see fuzz_csv_cells.cpp) ----
if shared_file("data", "merfish", "zhuang_mop_slice1.csv"):
    with open(shared_file("data", "merfish", "zhuang_mop_slice1.csv"), "rb") as f:
        rows = f.readlines()[:4]
    put("fuzz_csv_cells", "merfish.csv", b"\0" + b"".join(rows))
small = "cell_label,x,y,brain_section_label,cell_type,g1,g2,g3\nc1,1.5,2,s1,A,0,1,2\n\"c,2\",3,4e2,s1,\"B \"\"q\"\"\",1,nan,3\n"
put("fuzz_csv_cells", "small.csv", "\0" + small)
put("fuzz_csv_cells", "small-mm-genes.csv", "\x06" + small)
put("fuzz_csv_cells", "small.tsv", "\x01" + small.replace(",", "\t"))
put("fuzz_csv_cells", "ccf.csv", "\x10cell_id,pos_x,pos_y,section,ccf_x,ccf_y,ccf_z,Gad1\r\na,1,2,3,4,5,6,7\r\nb,1,2,3,4,5,6,8\r\n")

# ---- .pth: a tiny state_dict as torch.save writes it (zip, stored; pickle protocol 2) ----
# torch is not needed: stand-in modules give the pickle the same globals and persistent ids.
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
class FloatStorage: pass
class LongStorage: pass
FloatStorage.__module__ = LongStorage.__module__ = "torch"
torch.FloatStorage, torch.LongStorage = FloatStorage, LongStorage
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
# A tensor reduces to _rebuild_tensor_v2(storage, ...): the storage is the persistent id.
class S:
    def __init__(self, storage, key, numel): self.storage, self.key, self.numel = storage, key, numel
class Tensor:
    def __init__(self, s, size, stride, offset=0): self.s, self.size, self.stride, self.offset = s, size, stride, offset
    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.s, self.offset, self.size, self.stride, False, collections.OrderedDict()))
class Pk(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", obj.storage, obj.key, "cpu", obj.numel) if isinstance(obj, S) else None

def pth(name, tensors, blobs, compress=zipfile.ZIP_STORED, big=False):
    sd = collections.OrderedDict(tensors)
    buf = io.BytesIO(); Pk(buf, protocol=2).dump(sd)
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", compression=compress) as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "big" if big else "little")
        for key, blob in blobs.items(): zf.writestr(f"archive/data/{key}", blob)
        zf.writestr("archive/version", "3\n")
    put("fuzz_pth", name, z.getvalue())

s0, s1 = S(FloatStorage, "0", 6), S(LongStorage, "1", 2)
pth("stored.pth", [("w", Tensor(s0, (2, 3), (3, 1))), ("w_t", Tensor(s0, (3, 2), (1, 3))), ("n", Tensor(s1, (2,), (1,)))],
    {"0": struct.pack("<6f", *range(6)), "1": struct.pack("<2q", 7, -1)})
pth("deflated.pth", [("bias", Tensor(s0, (4,), (1,), 2))], {"0": struct.pack("<6f", *range(6))}, compress=zipfile.ZIP_DEFLATED)
pth("big-endian.pth", [("w", Tensor(s0, (6,), (1,)))], {"0": struct.pack(">6f", *range(6))}, big=True)

# ---- sessions (Workspace::toJson's shape; version 1 as earlier releases wrote it) ----
session = {"format": "atlascope-session", "version": 1, "dataset": "/data/demo.h5ad", "colour_by": "regions_k25",
           "side_by_side": True, "region_surfaces": False, "section_view": True, "selected_region": 382,
           "structures": [{"acronym": "CA1", "visible": True, "opacity": 0.6, "colour": [0.1, 0.5, 1]},
                          {"acronym": "TH", "visible": False, "opacity": 1}],
           "camera": {"position": [1, 2, 3], "focal_point": [0, 0, 0], "view_up": [0, -1, 0], "view_angle": 30},
           "camera_bookmarks": [{"position": [4, 5, 6], "focal_point": [0, 0, 0], "view_up": [0, 0, 1], "view_angle": 20}],
           "section": {"axis": "coronal", "position": 6800, "thickness": 200},
           "regions": {"model": "", "k": "25,100", "device": "cpu", "smooth": True}, "window": {"width": 1600, "height": 1000}}
put("fuzz_session", "full.json", json.dumps(session, indent=1))
put("fuzz_session", "minimal.json", '{"format":"atlascope-session","version":1}')
# Version 2: the workspace (several datasets, a grid of views, camera groups, names, matched colours).
v2 = {"format": "atlascope-session", "version": 2, "current_dataset": 2,
      "datasets": [{"id": 1, "name": "animal 1", "path": "/data/a.regions.h5ad", "columns": {"x": "px", "units": "mm"},
                    "display": {"visible": True, "colour_by": "regions_k25", "point_size": 4, "hidden_categories": [1, 3],
                                "highlighted_region": 2, "region_surfaces": True},
                    "region_names": {"regions_k25": {"0": "k25-0 \u00b7 CP 82%"}}},
                   {"id": 2, "path": "/data/b.regions.h5ad", "display": {"colour_by": "gene:Sst"},
                    "region_colours": {"regions_k25": {"1": "#ff8000"}}}],
      "structures": [{"acronym": "S8", "visible": True, "opacity": 0.2}, {"acronym": "S672", "visible": True, "colour": [1, 0, 0]}],
      "layout": {"rows": 1, "columns": 3, "views": [{"layers": ["atlas"], "camera_group": 0, "follows_datasets": False},
                                                     {"layers": ["cells:1", "surfaces:1"], "camera_group": 0},
                                                     {"layers": ["cells:2"], "camera_group": 1}]},
      "cameras": {"0": session["camera"], "1": session["camera_bookmarks"][0]},
      "section": {"axis": "sagittal", "position": 5000, "thickness": 100}, "section_view": True}
put("fuzz_session", "workspace.json", json.dumps(v2, indent=1))

# ---- worker stdout (first byte: where the pipe splits the input) ----
lines = ["atlascope-worker-pid 4242",
         json.dumps({"stage": "embedding", "done": 1200, "total": 40000}),
         json.dumps({"stage": "training", "epoch": 1, "train_loss": 3.2, "val_loss": 3.4, "done": 1, "total": 10}),
         "a log line from the worker", "",
         json.dumps({"result": "ok", "out": "/data/regions.h5ad", "k": [25, 100]})]
put("fuzz_worker_lines", "run.txt", "\x07" + "\n".join(lines) + "\n")
put("fuzz_worker_lines", "partial.txt", "\x20" + json.dumps({"stage": "k-means", "done": 1e300, "total": "12"}) + "\n{\"stage\":")
