"""What TensorBoard's own backend serves to its tabs, read in-process (no server, no browser).

:func:`hparams_tab` answers the two requests the HParams tab makes (``/experiment``,
``/session_groups``) through TensorBoard's hparams plugin over an EventMultiplexer, as
``tensorboard --logdir`` would.
"""

from __future__ import annotations

import json

from werkzeug.test import Client

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def plugin_context(logdir):
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return base_plugin.TBContext(data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)),
                                 logdir=str(logdir), multiplexer=mux)


def hparams_tab(logdir) -> tuple[dict, list[dict]]:
    """(experiment, session groups) as the HParams tab receives them, JSON-decoded."""
    from tensorboard.plugins.hparams import hparams_plugin

    plugin = hparams_plugin.HParamsPlugin(plugin_context(logdir))
    # the tab asks with hparamsLimit 1000; the backend then sorts the hparams as the tab lists them
    experiment = Client(plugin.get_experiment_route).post(
        "/", data=json.dumps({"experimentName": "", "hparamsLimit": 1000}))
    groups = Client(plugin.list_session_groups_route).post("/", data=json.dumps({
        "experimentName": "", "allowedStatuses": STATUSES, "colParams": [], "aggregationType": "AGGREGATION_AVG",
        "startIndex": 0, "sliceSize": 1000}))
    assert experiment.status_code == 200 and groups.status_code == 200, (experiment.data, groups.data)
    return json.loads(experiment.data), json.loads(groups.data).get("sessionGroups", [])


def ticked_by_default(experiment: dict) -> list[str]:
    """The hparams the HParams tab shows without a click: its first five, those that differ first (stable).

    TensorBoard 2.x's tf-hparams-query-pane: ``sort((a, b) => differs first)``, then ``displayed`` for
    ``i < min(5, n)``.
    """
    infos = sorted(experiment["hparamInfos"], key=lambda h: not h.get("differs", False))
    return [h["name"] for h in infos[:5]]


def custom_scalars_layout(logdir) -> dict:
    """The Custom Scalars tab's layout as TensorBoard merges it over the runs (``/layout``), JSON-decoded."""
    from tensorboard.plugins.custom_scalar import custom_scalars_plugin

    plugin = custom_scalars_plugin.CustomScalarsPlugin(plugin_context(logdir))
    response = Client(plugin.layout_route).get("/")
    assert response.status_code == 200, response.data
    return json.loads(response.data)
