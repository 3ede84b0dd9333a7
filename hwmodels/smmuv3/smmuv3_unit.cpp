#include "smmuv3_unit.h"

#include <ioasid/iommufd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace ioasid::hw::smmuv3 {
namespace {

// Every leaf size any granule can have: the IOTLB caches what the walk
// found, whichever granule the domain uses.
constexpr std::uint64_t kIotlbSizes = sizes::k4K | sizes::k2M | sizes::k1G | sizes::k16K | sizes::k32M |
                                      sizes::k64K | sizes::k512M | sizes::k4T;

// The PASID width the driver gives a device's CD table: the unit's
// SSIDSIZE, and no more than a linear table holds without CD2L
// (arm_smmu_probe_device()).
unsigned unit_ssid_bits(const SmmuFeatures& f)
{
    return f.two_level_cd_table ? f.ssid_bits : std::min(f.ssid_bits, CdTable::kLinearMax);
}

std::uint32_t code(EventId id)
{
    return static_cast<std::uint32_t>(id);
}

// One domain type per format, so the walker is compiled for its granule.
template <template <unsigned> class Format>
int make_domain(Unit& unit, const DomainRequest& request, const TableConfig& t, TableMemory& tables,
                IdAllocator& ids, std::uint16_t id, bool hd, std::unique_ptr<Domain>* out)
{
    const Geometry geometry{{0, (std::uint64_t{1} << t.ias) - 1}, t.pgsize_bitmap};
    auto build = [&]<unsigned G>() -> int {
        Format<G> format;
        format.leaf_sizes = t.pgsize_bitmap;
        format.non_coherent_walk = !t.coherent_walk;
        if constexpr (requires { format.hd; })
            format.hd = hd;
        const char* name = t.stage == Stage::s1 ? "smmuv3-stage1" : "smmuv3-stage2";
        auto domain = std::make_unique<SmmuDomain<Format<G>>>(unit, request, geometry, tables, format, t, ids, id,
                                                               name);
        if (int rc = domain->init())
            return rc;
        *out = std::move(domain);
        return 0;
    };
    switch (t.granule_shift) {
    case 12:
        return build.template operator()<12>();
    case 14:
        return build.template operator()<14>();
    default:
        return build.template operator()<16>();
    }
}

} // namespace

SmmuUnit::SmmuUnit(std::string name, const SmmuConfig& config, memory::PhysSpace& phys)
    : Unit(std::move(name), "smmuv3", unit_ssid_bits(probe(build_registers(config))), kIotlbSizes),
      config_(config), regs_(build_registers(config)), features_(probe(regs_)), tables_(phys),
      structures_(phys), asids_(features_.asid_bits), vmids_(features_.vmid_bits), streams_(structures_, features_)
{
    // arm_smmu_init_strtab() failing fails the probe: no unit at all.
    if (streams_.init() != 0)
        throw std::runtime_error("smmuv3 " + Unit::name() + ": no memory for the stream table");
}

SmmuUnit::~SmmuUnit() = default;

bool SmmuUnit::endpoint_dirty_tracking(const Endpoint& endpoint) const
{
    // arm_smmu_capable(IOMMU_CAP_DIRTY_TRACKING) is arm_smmu_dbm_capable();
    // a device that cannot is our extension, as the selftest mock's
    // MOCK_FLAGS_DEVICE_NO_DIRTY is.
    return dbm_capable(features_) && endpoint.config().dirty_tracking;
}

HwInfo SmmuUnit::hw_info(const Endpoint& endpoint) const
{
    // arm_smmu_hw_info() (6.13): the ID registers as read, no flags.
    iommu_hw_info_arm_smmuv3 smmu{};
    std::copy(std::begin(regs_.idr), std::end(regs_.idr), smmu.idr);
    smmu.iidr = regs_.iidr;
    smmu.aidr = regs_.aidr;
    HwInfo info;
    info.type = IOMMU_HW_INFO_TYPE_ARM_SMMUV3;
    info.data.resize(sizeof(smmu));
    std::memcpy(info.data.data(), &smmu, sizeof(smmu));
    if (endpoint_dirty_tracking(endpoint))
        info.capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
    // iommufd_get_hw_info(): log2 of dev->iommu->max_pasids, the device's
    // width capped by 1 << SSIDSIZE (dev_iommu_get_max_pasids()).
    info.max_pasid_log2 = static_cast<std::uint8_t>(std::min(endpoint.config().pasid_bits, features_.ssid_bits));
    return info;
}

int SmmuUnit::alloc_domain(const Endpoint& endpoint, const DomainRequest& request, std::unique_ptr<Domain>* out)
{
    // arm_smmu_domain_alloc_paging_flags(): NEST_PARENT alone asks for a
    // stage-2 domain and needs ARM_SMMU_FEAT_NESTING; DIRTY_TRACKING
    // and PASID, alone or together, need stage 1; nothing prefers stage 1.
    Stage stage = features_.stage1 ? Stage::s1 : Stage::s2;
    if (request.nest_parent) {
        if (request.dirty_tracking || request.pasid || !features_.nesting)
            return -EOPNOTSUPP;
        stage = Stage::s2;
    } else if (request.dirty_tracking || request.pasid) {
        if (!features_.stage1)
            return -EOPNOTSUPP;
    }
    // iommufd_hwpt_paging_alloc() asks IOMMU_CAP_DIRTY_TRACKING first.
    if (request.dirty_tracking && !endpoint_dirty_tracking(endpoint))
        return -EOPNOTSUPP;
    // arm_smmu_domain_finalise(): a stage-2 table cannot track dirtiness.
    if (request.dirty_tracking && stage == Stage::s2)
        return -EOPNOTSUPP;

    const auto table = plan_table(features_, stage, config_.va_bits, request.dirty_tracking);
    if (!table)
        return -ENOMEM; // alloc_io_pgtable_ops() failed
    // arm_smmu_domain_finalise_s1()/_s2(): an ASID or a VMID. The ASID
    // space is full: xa_alloc()'s -EBUSY; the VMID space: ida's -ENOSPC.
    IdAllocator& ids = stage == Stage::s1 ? asids_ : vmids_;
    const auto id = ids.alloc();
    if (!id)
        return stage == Stage::s1 ? -EBUSY : -ENOSPC;
    // On failure the domain is gone, and its id with it.
    return stage == Stage::s1 ? make_domain<Stage1Format>(*this, request, *table, tables_, ids, *id, table->hd, out)
                              : make_domain<Stage2Format>(*this, request, *table, tables_, ids, *id, false, out);
}

int SmmuUnit::check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid, const Domain& domain) const
{
    // arm_smmu_attach_dev(), arm_smmu_set_pasid(): a domain of another SMMU.
    if (&domain.unit() != this)
        return -EINVAL;
    if (domain.request().dirty_tracking && !endpoint_dirty_tracking(endpoint))
        return -EINVAL;
    // arm_smmu_insert_master() refuses a SID beyond the stream table.
    if (!streams_.covers(endpoint.config().rid))
        return -EINVAL;
    const auto* paging = dynamic_cast<const SmmuPaging*>(&domain);
    if (!paging)
        return -EINVAL;
    std::lock_guard guard(streams_lock_);
    auto it = stream_state_.find(&endpoint);
    const Stream* stream = it == stream_state_.end() ? nullptr : &it->second;
    if (pasid) {
        // iommu_attach_device_pasid(): PASID 0 is the RID's, and a device
        // takes PASIDs below its width only.
        const unsigned bits = pasid_bits(endpoint);
        if (*pasid == 0 || bits == 0 || (*pasid >> bits))
            return -EINVAL;
        // arm_smmu_s1_set_dev_pasid(): stage 1 only.
        if (paging->stage() != Stage::s1)
            return -EINVAL;
        // arm_smmu_set_pasid(): the RID must be blocked or use the CD
        // table itself; a stage-2 STE has no CD table to put it in.
        if (stream && stream->rid && stream->rid->stage() == Stage::s2)
            return -EINVAL;
        return 0;
    }
    // arm_smmu_attach_dev(): a stage-2 STE would hide the PASIDs' CDs.
    if (paging->stage() == Stage::s2 && stream && !stream->ssids.empty())
        return -EBUSY;
    return 0;
}

std::vector<Span> SmmuUnit::reserved_regions(const Endpoint&) const
{
    // arm_smmu_get_resv_regions(): the software MSI window, then what
    // iommu_dma_get_resv_regions() adds for firmware (nothing here).
    return {kMsiWindow};
}

CdTable* SmmuUnit::cd_table_for(Endpoint& endpoint, Stream& stream)
{
    // arm_smmu_alloc_cd_tables(), on the first stage-1 attachment; the
    // table then stays with the device.
    if (!stream.cds) {
        auto table = std::make_unique<CdTable>(structures_, pasid_bits(endpoint), features_.two_level_cd_table);
        if (table->init() != 0)
            return nullptr;
        stream.cds = std::move(table);
    }
    return stream.cds.get();
}

void SmmuUnit::write_ste(Endpoint& endpoint, Stream& stream)
{
    const std::uint32_t sid = endpoint.config().rid;
    if (stream.rid && stream.rid->stage() == Stage::s2)
        streams_.write(sid, make_s2_ste(*stream.rid, features_));
    else if (stream.cd_table_in_ste() && stream.cds)
        // CD 0 serves the RID when a stage-1 domain is there; with PASIDs
        // only, RID traffic is terminated (arm_smmu_update_ste()).
        streams_.write(sid, make_cdtable_ste(*stream.cds, stream.rid ? ste::kS1DssSsid0 : ste::kS1DssTerminate,
                                             features_));
    else
        streams_.write(sid, make_abort_ste());
}

void SmmuUnit::program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain)
{
    std::lock_guard guard(streams_lock_);
    Stream& stream = stream_state_[&endpoint];
    const auto* paging = dynamic_cast<const SmmuPaging*>(domain);
    if (pasid) {
        if (paging) {
            // arm_smmu_set_pasid(): the CD, then the STE if it did not
            // point at the CD table yet.
            if (CdTable* cds = cd_table_for(endpoint, stream)) {
                cds->write(*pasid, make_s1_cd(*paging));
                stream.ssids.insert(*pasid);
            }
        } else {
            // arm_smmu_remove_dev_pasid(): clear the CD; the last PASID
            // gone, a blocked RID gets its abort STE back.
            if (stream.cds)
                stream.cds->clear(*pasid);
            stream.ssids.erase(*pasid);
        }
        write_ste(endpoint, stream);
        return;
    }
    stream.rid = paging;
    if (paging && paging->stage() == Stage::s1) {
        // arm_smmu_attach_dev(): CD 0, then a CD-table STE using it.
        if (CdTable* cds = cd_table_for(endpoint, stream))
            cds->write(0, make_s1_cd(*paging));
    } else if (stream.cds) {
        // Stage 2 or blocked: the STE changes first, then CD 0 goes.
        write_ste(endpoint, stream);
        stream.cds->clear(0);
        return;
    }
    write_ste(endpoint, stream);
}

std::optional<Ste> SmmuUnit::ste(std::uint32_t sid) const
{
    std::lock_guard guard(streams_lock_);
    const std::uint64_t* entry = const_cast<StreamTable&>(streams_).ste(sid, false);
    if (!entry)
        return std::nullopt;
    Ste out;
    std::copy(entry, entry + out.size(), out.begin());
    return out;
}

std::optional<Cd> SmmuUnit::cd(std::uint32_t sid, std::uint32_t ssid) const
{
    std::lock_guard guard(streams_lock_);
    for (const auto& [endpoint, stream] : stream_state_) {
        if (endpoint->config().rid != sid || !stream.cds)
            continue;
        const std::uint64_t* entry = std::as_const(*stream.cds).cd(ssid);
        if (!entry)
            return std::nullopt;
        Cd out;
        std::copy(entry, entry + out.size(), out.begin());
        return out;
    }
    return std::nullopt;
}

std::uint32_t SmmuUnit::fault_code(FaultReason reason, Access) const
{
    // Without knowing the stream: a stage-1 domain's view.
    switch (reason) {
    case FaultReason::blocked:
        return code(EventId::none);
    case FaultReason::pasid_range:
        return code(EventId::c_bad_substreamid);
    case FaultReason::address_size:
    case FaultReason::not_present:
        return code(EventId::f_translation);
    case FaultReason::permission:
        return code(EventId::f_permission);
    }
    return 0;
}

std::uint32_t SmmuUnit::fault_code(const Fault& fault, const Endpoint& endpoint, const Domain* domain) const
{
    const FaultReason reason = fault.reason;
    const Access access = fault.access;
    const auto* paging = dynamic_cast<const SmmuPaging*>(domain);
    switch (reason) {
    case FaultReason::blocked:
    case FaultReason::pasid_range: {
        std::lock_guard guard(streams_lock_);
        auto it = stream_state_.find(&endpoint);
        const Stream* stream = it == stream_state_.end() ? nullptr : &it->second;
        // An abort STE terminates everything and records nothing.
        if (!stream || (!stream->cd_table_in_ste() && !stream->rid))
            return code(EventId::none);
        // A SubstreamID on a stage-2 STE, or one at or beyond 2^S1CDMAX.
        if (reason == FaultReason::pasid_range || !stream->cd_table_in_ste())
            return code(EventId::c_bad_substreamid);
        // A request without a SubstreamID while the RID is blocked behind
        // PASIDs: S1DSS terminate.
        if (!fault.pasid && !stream->rid)
            return code(EventId::f_stream_disabled);
        // A PASID without a CD: its L1 descriptor is invalid if no PASID
        // of its 1024 ever had one, else the CD itself is.
        return code(EventId::c_bad_cd);
    }
    case FaultReason::address_size:
        // Stage 1: an input above T0SZ's range lies in TTB1's, which EPD1
        // disables: a translation fault. Stage 2: an IPA above the SMMU's
        // IAS is an address size fault, but one within the IAS and above
        // S2T0SZ's range (a 4K- or 16K-granule table is capped at 48 bits
        // when the IAS is 52) is a translation fault.
        if (paging && paging->stage() == Stage::s2 && (fault.iova >> features_.ias) != 0)
            return code(EventId::f_addr_size);
        return code(EventId::f_translation);
    case FaultReason::not_present:
    case FaultReason::permission:
        return fault_code(reason, access);
    }
    return 0;
}

namespace {

SmmuConfig read_config(UnitParams& params)
{
    SmmuConfig config;
    if (auto stages = params.string("stages")) {
        if (*stages == "s1")
            config.stage2 = false;
        else if (*stages == "s2")
            config.stage1 = false;
        else if (*stages != "both")
            throw UnitParamError(params.where("stages") + ": stages must be \"s1\", \"s2\" or \"both\"");
    }
    config.oas = static_cast<unsigned>(params.integer_in("oas", 32, 52).value_or(config.oas));
    config.vax = params.boolean("vax").value_or(config.vax);
    config.va_bits = static_cast<unsigned>(params.integer_in("va_bits", 39, 52).value_or(config.va_bits));
    if (auto granules = params.string("granules")) {
        config.gran4k = config.gran16k = config.gran64k = false;
        std::stringstream list(*granules);
        std::string item;
        while (std::getline(list, item, ',')) {
            item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
            if (item == "4K")
                config.gran4k = true;
            else if (item == "16K")
                config.gran16k = true;
            else if (item == "64K")
                config.gran64k = true;
            else
                throw UnitParamError(params.where("granules") + ": granules is a list of 4K, 16K, 64K, not \"" +
                                     item + "\"");
        }
    }
    config.ssid_bits = static_cast<unsigned>(params.integer_in("ssid_bits", 0, 20).value_or(config.ssid_bits));
    config.sid_bits = static_cast<unsigned>(params.integer_in("sid_bits", 0, 32).value_or(config.sid_bits));
    if (auto httu = params.string("httu")) {
        if (*httu == "none")
            config.httu = Httu::none;
        else if (*httu == "ha")
            config.httu = Httu::access;
        else if (*httu == "hd")
            config.httu = Httu::access_dirty;
        else
            throw UnitParamError(params.where("httu") + ": httu must be \"none\", \"ha\" or \"hd\"");
    }
    config.coherent = params.boolean("coherent").value_or(config.coherent);
    config.two_level_stream_table = params.boolean("two_level_stream_table").value_or(config.two_level_stream_table);
    config.two_level_cd_table = params.boolean("two_level_cd_table").value_or(config.two_level_cd_table);
    return config;
}

} // namespace

std::unique_ptr<Unit> create_smmuv3_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys)
{
    const SmmuConfig config = read_config(params);
    if (auto problem = check_config(config))
        throw UnitParamError(params.where(problem->key) + ": " + problem->message);
    return std::make_unique<SmmuUnit>(name, config, phys);
}

} // namespace ioasid::hw::smmuv3
