#!/usr/bin/python3
"""Generates sklearn_fixture.json: inputs and scikit-learn's answers for the
eval package tests. Run once with Debian's python3-sklearn (1.2.1):

    /usr/bin/python3 eval/testdata/sklearn_fixture.py > eval/testdata/sklearn_fixture.json

The Go tests read only the JSON; they never need python."""
import json

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, confusion_matrix,
                             precision_recall_fscore_support, roc_auc_score)

rng = np.random.RandomState(20261127)


def metrics_case(name, y, p, c):
    y, p = list(map(int, y)), list(map(int, p))
    out = {"name": name, "classes": c, "labels": y, "preds": p,
           "accuracy": accuracy_score(y, p)}
    for avg in ("macro", "weighted"):
        pr, rc, f1, _ = precision_recall_fscore_support(y, p, average=avg, zero_division=0)
        out[avg] = {"precision": pr, "recall": rc, "f1": f1}
    pr, rc, f1, sup = precision_recall_fscore_support(
        y, p, labels=list(range(c)), average=None, zero_division=0)
    out["per_class"] = {"precision": pr.tolist(), "recall": rc.tolist(),
                        "f1": f1.tolist(), "support": sup.tolist()}
    out["confusion"] = confusion_matrix(y, p, labels=list(range(c))).tolist()
    return out


cases = []
# 1. Imbalanced 7 classes, about 70 % right; class 6 never occurs anywhere,
# class 5 is predicted but never true, class 4 is true but never predicted.
n, c = 300, 7
y = rng.choice(5, size=n, p=[0.45, 0.25, 0.15, 0.1, 0.05])
p = np.where(rng.rand(n) < 0.7, y, rng.choice([0, 1, 2, 3, 5], size=n))
p[y == 4] = rng.choice([0, 1, 5], size=(y == 4).sum())
cases.append(metrics_case("imbalanced_absent_classes", y, p, c))
# 2. 17 classes, uniform, 40 % right.
n, c = 500, 17
y = rng.randint(0, c, size=n)
p = np.where(rng.rand(n) < 0.4, y, rng.randint(0, c, size=n))
cases.append(metrics_case("uniform_17", y, p, c))
# 3. Tiny: every prediction wrong.
cases.append(metrics_case("all_wrong", [0, 1, 2, 0], [1, 2, 0, 2], 4))

auc = []
# Continuous scores, many ties (rounded to one decimal), and a perfect split.
s = rng.randn(120)
lab = (rng.rand(120) < 0.3).astype(int)
s = s + lab * 0.8
for name, sc in (("continuous", s), ("ties", np.round(s, 1)),
                 ("coarse_ties", np.round(s))):
    auc.append({"name": name, "scores": sc.tolist(), "positive": lab.tolist(),
                "auroc": roc_auc_score(lab, sc)})

json.dump({"generator": "eval/testdata/sklearn_fixture.py",
           "sklearn": sklearn.__version__, "numpy": np.__version__,
           "metrics": cases, "auroc": auc}, __import__("sys").stdout, indent=1)
print()
