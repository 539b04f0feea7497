"""One paid image request: validate, hold n × unit price, generate, store, settle per image."""

from __future__ import annotations

import base64
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from farebox.catalog.model import Catalog, Route
from farebox.errors import InvalidRequest, UpstreamError
from farebox.images.inputs import checked_image, fetch_image
from farebox.images.request import ImageCall, InputImage, read_image_call
from farebox.ledger.types import QueryRecord
from farebox.media.store import MediaFile, MediaStore, new_gen_id
from farebox.modalities.paid import (
    Buyer,
    PaidResult,
    Payer,
    call_capability,
    json_bytes,
    require_type,
    usd,
)
from farebox.net.ssrf import FetchPolicy
from farebox.providers.router import Router


@dataclass(frozen=True)
class ImageOrder:
    """A validated, priced image request (`call.quote` is its exact price) and its input
    images as read so far (an `image_url` is fetched only once its price is held)."""

    call: ImageCall
    image: InputImage | None = None
    mask: InputImage | None = None

    @property
    def price(self) -> int:
        return self.call.quote


class ImageService:
    def __init__(
        self,
        catalog: Catalog,
        router: Router,
        payer: Payer,
        media: MediaStore,
        fetch_policy: FetchPolicy,
    ) -> None:
        self.catalog = catalog
        self.router = router
        self.payer = payer
        self.media = media
        self.fetch_policy = fetch_policy

    def _model(self, values: dict[str, Any], endpoint: str) -> Any:
        model_id = values.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise InvalidRequest("model is required. See GET /v1/models?type=image.", param="model")
        model = self.catalog.resolve(model_id)
        require_type(model, "image", endpoint=endpoint)
        return model

    def read_generation(self, body: dict[str, Any]) -> ImageOrder:
        """Validate and price POST /v1/images/generations (JSON) before any money moves."""
        model = self._model(body, "/v1/images/generations")
        return ImageOrder(read_image_call(body, model, edit=False))

    async def read_edit(
        self, fields: dict[str, Any], image: bytes | None, mask: bytes | None
    ) -> ImageOrder:
        """Validate and price POST /v1/images/edits (multipart: image, prompt, model, ...)."""
        model = self._model(fields, "/v1/images/edits")
        if "image_url" not in model.parameters:
            raise InvalidRequest(f"{model.id} does not take an input image.", param="model")
        if image is None:
            raise InvalidRequest("Upload the image to edit as the 'image' file.", param="image")
        call = read_image_call(fields, model, edit=True)
        source_image = await checked_image(image, "image")
        mask_image = await checked_image(mask, "mask") if mask is not None else None
        return ImageOrder(call, source_image, mask_image)

    async def run(self, buyer: Buyer, order: ImageOrder, base_url: str) -> PaidResult:
        """Hold the price, fetch an `image_url` input (guarded), generate, store, settle."""
        call, image, mask = order.call, order.image, order.mask
        # The hold checks the key's scope and rate limits: a request they refuse makes no
        # outbound fetch. A fetch that fails voids the hold (nothing is charged).
        charge = await buyer.open(call.quote, call.model)
        held = charge.held
        job = call.job

        async def attempt(provider: Any, route: Route) -> list[MediaFile]:
            files: list[MediaFile] = await provider.generate_images(route.upstream_model, job)
            if not files:
                raise UpstreamError("The upstream provider returned no image. Nothing was charged.")
            return files[: job.n]

        gen_id = new_gen_id()
        try:
            if image is None and call.image_url:
                image = await fetch_image(call.image_url, self.fetch_policy)
            if image is not None:
                job = dataclasses.replace(job, image=image, mask=mask)
            files = await call_capability(self.router, call.model, "generate_images", attempt)
            await self.media.save(gen_id, buyer.account_id, files)
        except BaseException:
            charge.void()
            raise
        cost = min(call.unit_price * len(files), held)
        charge.settle(
            cost,
            QueryRecord(
                model=call.model.id,
                input_count=job.n,
                output_count=len(files),
                query_type="image",
                query_source=buyer.source,
                is_free_model=call.model.is_free,
            ),
        )
        data = []
        for n, item in enumerate(files):
            entry: dict[str, Any] = {
                "url": self.media.url(base_url, gen_id, n),
                "content_type": item.content_type,
            }
            if call.response_format == "b64_json":
                entry["b64_json"] = base64.b64encode(item.data).decode()
            data.append(entry)
        body = {
            "id": gen_id,
            "created": int(time.time()),
            "model": call.model.id,
            "cost": usd(cost),
            "data": data,
        }
        return PaidResult(cost_nanos=cost, request_id=charge.request_id, body=json_bytes(body))
