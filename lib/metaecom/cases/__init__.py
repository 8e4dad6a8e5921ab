"""What the case studies (Part III) and the theory chapters reuse, one module per case.

- :mod:`metaecom.cases.synthetic`      -- store price-demand and sinusoid tasks with known
  ground truth (the theory chapters and fast tests; never a stand-in for real data)
- :mod:`metaecom.cases.coldstart`      -- rating features for cold-start recommendation
- :mod:`metaecom.cases.recommendation` -- MeLU's baselines, scoring per user, early stopping
- :mod:`metaecom.cases.markets`        -- Online Retail countries as few-shot regression tasks,
  and products entering a country as forecasting tasks
- :mod:`metaecom.cases.pricing`        -- weekly list prices, per-product price-response
  tasks, slopes shrunk towards the pooled slope, and the price a fitted line recommends
- :mod:`metaecom.cases.intents`        -- few-shot intent routing: all-intents tasks with
  out-of-scope intents, query intents, out-of-scope rejection (ROC-AUC, false accepts at
  a true-accept rate) and the cost of routing
- :mod:`metaecom.cases.launches`       -- new products as forecasting tasks: launch curves,
  left-censoring, a split in time
- :mod:`metaecom.cases.risk`           -- risk scores at a review budget, and calibration
- :mod:`metaecom.cases.profiling`      -- a new customer's orders as a profile: order features
  known when an order is placed, spend in a window, the value a list of customers holds
- :mod:`metaecom.cases.search`         -- matching offers to the products of a new category:
  retrieval tasks, product scores, Recall@k and MRR with ties, TF-IDF, auto-match thresholds
- :mod:`metaecom.cases.stock`          -- stocking from a forecast: the newsvendor rule, its
  cost, and the quantile (pinball) loss

Import the module you need (``from metaecom.cases import markets``); this package
imports none of them itself.
"""
